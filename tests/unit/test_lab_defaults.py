"""Defaults that match the lab and the model zoo: validation on data/libri_val_manifest.csv when it exists, and
export's 35 s static input."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _train_config(tmp_path, monkeypatch, *extra: str):
    import train
    from src.cli import build_train_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "libri_train_manifest.csv").write_text("a.wav,a.txt\n")
    return build_train_config(train.parse_args(["--labels_path", str(REPO / "labels.json"), *extra]))


def test_val_manifest_defaults_to_the_labs_path_when_it_exists(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "libri_val_manifest.csv").write_text("b.wav,b.txt\n")
    assert _train_config(tmp_path, monkeypatch).DataConfig.val_manifest == "data/libri_val_manifest.csv"
    assert _train_config(tmp_path, monkeypatch, "--val_manifest", "").DataConfig.val_manifest == ""


def test_no_validation_when_the_labs_val_manifest_is_absent(tmp_path, monkeypatch):
    assert _train_config(tmp_path, monkeypatch).DataConfig.val_manifest == ""


def test_export_input_is_the_model_zoos_35_seconds():
    import export
    from src import shapes
    from src.cli import EXPORT_FLAGS, build_config

    cfg = build_config(export.parse_args(["--pre_trained_model_path", "x.ckpt"]), EXPORT_FLAGS, "x.ckpt")
    assert cfg.ExportConfig.input_seconds == 35.0
    assert shapes.frames_for_seconds(cfg.ExportConfig.input_seconds, 16000, 0.01) == 3501
