"""src/config.py: the lab's defaults, typed overrides, saving/reloading, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import scipy.signal

from src import config as C

LABELS_PATH = str(Path(__file__).resolve().parents[2] / "labels.json")


def valid_train_config(tmp_path: Path) -> C.TrainConfig:
    manifest = tmp_path / "train.csv"
    manifest.write_text("a.wav,a.txt\n", encoding="utf-8")
    cfg = C.TrainConfig()
    cfg.DataConfig.train_manifest = str(manifest)
    cfg.DataConfig.val_manifest = ""
    cfg.DataConfig.labels_path = LABELS_PATH
    return cfg


def test_train_defaults_match_the_lab() -> None:
    cfg = C.TrainConfig()
    assert cfg.TrainingConfig.epochs == 70
    assert cfg.DataConfig.batch_size == 20
    assert cfg.OptimConfig.learning_rate == 3e-4
    assert cfg.OptimConfig.learning_anneal == 1.1
    assert cfg.OptimConfig.betas == (0.9, 0.999)
    assert cfg.ModelConfig.rnn_type == "LSTM"
    assert cfg.ModelConfig.hidden_size == 1024
    assert cfg.ModelConfig.hidden_layers == 5
    spect = cfg.DataConfig.SpectConfig
    assert (spect.sample_rate, spect.window_size, spect.window_stride, spect.window) == (16000, 0.02, 0.01, "hamming")


def test_eval_window_is_hamming_not_upstreams_hanning() -> None:
    eval_spect = C.EvalConfig().DataConfig.SpectConfig
    assert eval_spect.window == "hamming"
    assert eval_spect == C.TrainConfig().DataConfig.SpectConfig
    # Upstream's eval config said "hanning", a name current SciPy no longer accepts.
    with pytest.raises(ValueError):
        scipy.signal.get_window("hanning", 8)
    C.validate_spect(eval_spect)
    with pytest.raises(ValueError, match="hanning"):
        C.validate_spect(C.SpectConfig(window="hanning"))


def test_spect_configs_are_not_shared_objects() -> None:
    a, b = C.EvalConfig(), C.EvalConfig()
    a.DataConfig.SpectConfig.window = "hann"
    assert b.DataConfig.SpectConfig.window == "hamming"
    assert C.TrainConfig().DataConfig.SpectConfig.window == "hamming"


def test_apply_overrides_converts_types() -> None:
    cfg = C.apply_overrides(
        C.TrainConfig(),
        [
            "TrainingConfig.epochs=3",
            "OptimConfig.learning_rate=1e-3",
            "DataConfig.sortagrad=false",
            "DataConfig.skip_invalid=1",
            "OptimConfig.betas=(0.8, 0.99)",
            "DataConfig.SpectConfig.window=hann",
            "DataConfig.SpectConfig.window_stride=0.02",
            "ModelConfig.hidden_size = 8",
        ],
    )
    assert cfg.TrainingConfig.epochs == 3 and type(cfg.TrainingConfig.epochs) is int
    assert cfg.OptimConfig.learning_rate == 1e-3 and type(cfg.OptimConfig.learning_rate) is float
    assert cfg.DataConfig.sortagrad is False
    assert cfg.DataConfig.skip_invalid is True
    assert cfg.OptimConfig.betas == (0.8, 0.99)
    assert cfg.DataConfig.SpectConfig.window == "hann"
    assert cfg.DataConfig.SpectConfig.window_stride == 0.02
    assert cfg.ModelConfig.hidden_size == 8


def test_float_default_accepts_integer_text() -> None:
    cfg = C.apply_overrides(C.TrainConfig(), ["OptimConfig.max_norm=100"])
    assert cfg.OptimConfig.max_norm == 100.0 and type(cfg.OptimConfig.max_norm) is float


def test_later_override_wins() -> None:
    cfg = C.apply_overrides(C.TrainConfig(), ["TrainingConfig.epochs=3", "TrainingConfig.epochs=4"])
    assert cfg.TrainingConfig.epochs == 4


@pytest.mark.parametrize(
    "item",
    [
        "TrainingConfig.epoch=3",  # unknown key
        "TrainConfig.epochs=3",  # unknown section
        "DataConfig.Spect.window=hann",  # unknown nested section
        "DataConfig.SpectConfig=hann",  # a section, not a value
        "nonsense=1",
    ],
)
def test_unknown_keys_and_sections_raise_key_error(item: str) -> None:
    cfg = C.TrainConfig()
    with pytest.raises(KeyError):
        C.apply_overrides(cfg, [item])
    assert not hasattr(cfg, "nonsense")
    assert not hasattr(cfg.TrainingConfig, "epoch")


@pytest.mark.parametrize(
    "item",
    [
        "TrainingConfig.epochs=three",
        "TrainingConfig.epochs=1.5",
        "OptimConfig.learning_rate=fast",
        "DataConfig.sortagrad=maybe",
        "OptimConfig.betas=0.9",
        "OptimConfig.betas=(0.9,0.99,0.5)",
        "TrainingConfig.epochs",  # no '='
    ],
)
def test_bad_values_raise_value_error(item: str) -> None:
    with pytest.raises(ValueError):
        C.apply_overrides(C.TrainConfig(), [item])


def test_save_config_and_update_from_dict_round_trip(tmp_path: Path) -> None:
    cfg = C.apply_overrides(
        C.TrainConfig(),
        ["ModelConfig.hidden_size=8", "OptimConfig.betas=(0.5,0.6)", "DataConfig.SpectConfig.window=hann"],
    )
    path = C.save_config(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["ModelConfig"]["hidden_size"] == 8
    restored = C.TrainConfig()
    C.update_from_dict(restored, data, strict=True)
    assert restored == cfg
    assert restored.OptimConfig.betas == (0.5, 0.6)


def test_update_from_dict_unknown_keys() -> None:
    cfg = C.TrainConfig()
    C.update_from_dict(cfg, {"ModelConfig": {"hidden_size": 16, "extra": 1}, "other": 2})
    assert cfg.ModelConfig.hidden_size == 16
    assert not hasattr(cfg.ModelConfig, "extra")
    with pytest.raises(KeyError, match="ModelConfig.extra"):
        C.update_from_dict(C.TrainConfig(), {"ModelConfig": {"extra": 1}}, strict=True)


@pytest.mark.parametrize("config_dir", ["ckpt", "."])
def test_load_run_model_config_next_to_checkpoint(tmp_path: Path, config_dir: str) -> None:
    train = C.apply_overrides(
        C.TrainConfig(),
        ["ModelConfig.hidden_size=8", "ModelConfig.hidden_layers=1", "DataConfig.SpectConfig.window=hann"],
    )
    C.save_config(train, tmp_path / config_dir)
    ckpt = tmp_path / "ckpt" / "DeepSpeech-1_2.ckpt"
    spect, model = C.SpectConfig(), C.ModelConfig()
    assert C.load_run_model_config(ckpt, spect, model) == tmp_path / config_dir / "config.json"
    assert (model.hidden_size, model.hidden_layers) == (8, 1)
    assert spect.window == "hann"


def test_load_run_model_config_without_config_changes_nothing(tmp_path: Path) -> None:
    spect, model = C.SpectConfig(), C.ModelConfig()
    assert C.load_run_model_config(tmp_path / "a" / "x.ckpt", spect, model) is None
    assert spect == C.SpectConfig() and model == C.ModelConfig()


def test_validate_train_accepts_a_valid_config(tmp_path: Path) -> None:
    C.validate_train(valid_train_config(tmp_path))


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ("DataConfig.SpectConfig.window=hanning", ValueError),
        ("DataConfig.SpectConfig.window=boxcarr", ValueError),
        ("DataConfig.SpectConfig.sample_rate=0", ValueError),
        ("DataConfig.batch_size=0", ValueError),
        ("TrainingConfig.epochs=-1", ValueError),
        ("ModelConfig.hidden_size=0", ValueError),
        ("ModelConfig.rnn_type=GRU", ValueError),
        ("OptimConfig.learning_rate=0", ValueError),
        ("CheckpointConfig.keep_checkpoint_max=0", ValueError),
        ("device_target=TPU", ValueError),
        ("DataConfig.train_manifest=/nonexistent/train.csv", FileNotFoundError),
        ("DataConfig.val_manifest=/nonexistent/val.csv", FileNotFoundError),
        ("DataConfig.labels_path=/nonexistent/labels.json", FileNotFoundError),
    ],
)
def test_validate_train_rejects(tmp_path: Path, item: str, error: type) -> None:
    cfg = C.apply_overrides(valid_train_config(tmp_path), [item])
    with pytest.raises(error):
        C.validate_train(cfg)


def test_validate_eval(tmp_path: Path) -> None:
    cfg = C.EvalConfig()
    cfg.DataConfig.labels_path = LABELS_PATH
    with pytest.raises(FileNotFoundError, match="test_manifest"):
        C.validate_eval(cfg)
    manifest = tmp_path / "test.csv"
    manifest.write_text("a.wav,a.txt\n", encoding="utf-8")
    cfg.DataConfig.test_manifest = str(manifest)
    C.validate_eval(cfg)
