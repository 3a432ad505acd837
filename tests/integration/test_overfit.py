"""CTC training really learns: a tiny configuration memorises 10 spoken digit clips (espeak-ng, CER < 10%)."""

from __future__ import annotations

import random

import pytest

ms = pytest.importorskip("mindspore")
pytestmark = [pytest.mark.mindspore, pytest.mark.slow]


def test_tiny_config_overfits_ten_clips(spoken_digits, digit_manifest, tmp_path, labels):
    from src import config as C
    from src.dataset import create_dataset
    from src.inference import evaluate_network
    from src.trainer import Trainer

    order = list(range(len((spoken_digits / "train.csv").read_text().splitlines())))
    random.Random(0).shuffle(order)
    manifest = digit_manifest(order[:10], "ten.csv")
    cfg = C.TrainConfig()
    C.apply_overrides(
        cfg,
        [
            f"DataConfig.train_manifest={manifest}",
            "DataConfig.val_manifest=",
            "DataConfig.batch_size=10",
            "DataConfig.sortagrad=false",
            "TrainingConfig.epochs=200",
            "TrainingConfig.log_interval=50",
            "ModelConfig.hidden_size=128",
            "ModelConfig.hidden_layers=2",
            "OptimConfig.learning_rate=8e-3",
            "OptimConfig.constant_epochs=200",
            "CheckpointConfig.keep_checkpoint_max=1",
            f"CheckpointConfig.ckpt_path={tmp_path / 'run'}",
        ],
    )
    cfg.DataConfig.labels_path = str(C.REPO_ROOT / "labels.json")
    trainer = Trainer(cfg)
    summary = trainer.run()
    assert summary.steps == 200 and summary.skipped_steps == 0
    data = create_dataset(str(manifest), labels, cfg.DataConfig.SpectConfig, batch_size=10, training=False)
    trainer.net.set_train(False)
    result = evaluate_network(trainer.net, data, labels)
    assert result.count == 10
    print(f"overfit: CER {result.cer * 100:.1f}% WER {result.wer * 100:.1f}%")
    assert result.cer < 0.10, [(u.reference, u.hypothesis) for u in result.utterances]
