"""Integration tests run MindSpore in graph mode on the CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def graph_mode_cpu():
    ms = pytest.importorskip("mindspore")
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return ms


@pytest.fixture()
def tiny_train_config(tmp_path):
    """make(manifest, *overrides) -> a validated-path TrainConfig: hidden 16 x 1, batch 4, 1 epoch, run in tmp."""
    from src import config as C

    def make(manifest, *overrides: str):
        cfg = C.TrainConfig()
        base = [
            f"DataConfig.train_manifest={manifest}",
            "DataConfig.val_manifest=",  # never the lab's default data/libri_val_manifest.csv of the checkout
            "DataConfig.batch_size=4",
            "TrainingConfig.epochs=1",
            "ModelConfig.hidden_size=16",
            "ModelConfig.hidden_layers=1",
            f"CheckpointConfig.ckpt_path={tmp_path / 'run'}",
        ]
        C.apply_overrides(cfg, base + list(overrides))
        cfg.DataConfig.labels_path = str(C.REPO_ROOT / "labels.json")
        return cfg

    return make
