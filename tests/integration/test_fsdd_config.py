"""configs/fsdd_small.json: loads through the CLI with strict keys, and builds a network that takes its features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "fsdd_small.json"


def write_clip(folder: Path, seconds: float = 0.5, sr: int = 16000) -> str:
    """One 16 kHz clip (FSDD's rate) with its transcript and a one-row manifest; returns the manifest path."""
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(folder / "a.wav"), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    (folder / "a.txt").write_text("SEVEN", encoding="utf-8")
    manifest = folder / "train.csv"
    manifest.write_text("a.wav,a.txt\n", encoding="utf-8")
    return str(manifest)


def load_config(manifest: str, *extra: str):
    import train
    from src.cli import build_train_config

    return build_train_config(train.parse_args(["--config", str(CONFIG), "--train_manifest", manifest, *extra]))


def test_config_file_loads_with_strict_keys(tmp_path: Path) -> None:
    cfg = load_config(write_clip(tmp_path))
    assert (cfg.ModelConfig.hidden_size, cfg.ModelConfig.hidden_layers) == (128, 2)
    assert cfg.DataConfig.SpectConfig.sample_rate == 8000
    assert cfg.OptimConfig.constant_epochs >= 1 and cfg.DataConfig.batch_size == 16
    # Only the changed keys are in the file; everything else keeps the lab's defaults.
    assert cfg.OptimConfig.betas == (0.9, 0.999) and cfg.DataConfig.SpectConfig.window == "hamming"
    # --set still wins over the file.
    assert load_config(write_clip(tmp_path), "--set", "ModelConfig.hidden_size=64").ModelConfig.hidden_size == 64


def test_an_unknown_key_in_the_file_is_rejected(tmp_path: Path) -> None:
    import train
    from src.cli import build_train_config

    data = json.loads(CONFIG.read_text(encoding="utf-8"))
    data["ModelConfig"]["hidden_sise"] = 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KeyError, match="hidden_sise"):
        build_train_config(train.parse_args(["--config", str(bad), "--train_manifest", write_clip(tmp_path)]))


def test_network_takes_the_configs_features_and_eval_rebuilds_it(tmp_path: Path) -> None:
    from src import config as C
    from src import shapes
    from src.dataset import create_dataset
    from src.deepspeech2 import PredictWithSoftmax, build_network
    from src.text import load_labels

    cfg = load_config(write_clip(tmp_path))
    spect, model = cfg.DataConfig.SpectConfig, cfg.ModelConfig
    labels = load_labels(cfg.DataConfig.labels_path)
    data = create_dataset(cfg.DataConfig.train_manifest, labels, spect, batch_size=1, training=False)
    _, batch = next(iter(data.iterate(0)))
    features, lengths, _, _ = batch.arrays()
    assert features.shape[2] == shapes.freq_bins(spect.sample_rate, spect.window_size) == 81  # 8 kHz front end
    net = build_network(labels, spect, model)
    n_params = sum(int(np.prod(p.shape)) for p in net.trainable_params())
    assert n_params < 2_000_000  # small: the lab's 1024 x 5 network has 86.6 M
    probs, out_lengths = PredictWithSoftmax(net)(ms.Tensor(features), ms.Tensor(lengths))
    assert probs.shape == (1, shapes.output_length(features.shape[3]), len(labels))
    assert int(out_lengths.asnumpy()[0]) == shapes.output_length(int(lengths[0]))
    np.testing.assert_allclose(probs.asnumpy().sum(-1), 1.0, rtol=1e-4)
    # eval.py and export.py rebuild the same network from the run's config.json.
    C.save_config(cfg, tmp_path / "run")
    spect2, model2 = C.SpectConfig(), C.ModelConfig()
    assert C.load_run_model_config(tmp_path / "run" / "x.ckpt", spect2, model2) is not None
    assert (spect2, model2) == (spect, model)
