"""The lab's configuration as typed dataclasses: defaults, loading, overrides and validation only.

Attribute paths follow the lab handout (`train_config.DataConfig.train_manifest`,
`train_config.OptimConfig.learning_rate`, `eval_config.DataConfig.SpectConfig.window`). SpectConfig and
ModelConfig are defined once and shared by train, eval and export; a training run writes the resolved config
to `<ckpt_path>/config.json` so eval and export rebuild exactly the same features and network.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.atomic import write_text

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE_NAME = "config.json"
LAB_VAL_MANIFEST = "data/libri_val_manifest.csv"  # the lab's config names it; used when it exists


@dataclass
class SpectConfig:
    """Spectrogram front end (shared by train, eval, export and transcribe)."""

    sample_rate: int = 16000
    window_size: float = 0.02  # seconds; n_fft = sample_rate * window_size = 320
    window_stride: float = 0.01  # seconds; hop = 160
    window: str = "hamming"  # any scipy.signal.get_window name; the same in train and eval


@dataclass
class AugmentationConfig:
    """Training-time augmentation (off by default, as in the lab)."""

    speed_volume_perturb: bool = False
    spec_augment: bool = False
    noise_dir: str = ""
    noise_prob: float = 0.4
    noise_min: float = 0.0
    noise_max: float = 0.5


@dataclass
class ModelConfig:
    """Network size. Only LSTM exists upstream and here."""

    rnn_type: str = "LSTM"
    hidden_size: int = 1024
    hidden_layers: int = 5


@dataclass
class TrainDataConfig:
    """Training data: manifests, batching, labels."""

    train_manifest: str = "data/libri_train_manifest.csv"
    val_manifest: str = LAB_VAL_MANIFEST  # per-epoch WER, best checkpoint; off when "" or this default is absent
    batch_size: int = 20
    labels_path: str = "labels.json"
    num_workers: int = 2  # feature-extraction threads
    max_duration: float = 35.0  # seconds; longer clips are skipped with a counted warning (never cropped)
    sortagrad: bool = True  # first epoch in order of duration
    skip_invalid: bool = False  # drop invalid manifest rows with a counted warning instead of stopping
    SpectConfig: SpectConfig = field(default_factory=SpectConfig)
    AugmentationConfig: AugmentationConfig = field(default_factory=AugmentationConfig)


@dataclass
class EvalDataConfig:
    """Evaluation data."""

    test_manifest: str = "data/libri_test_clean_manifest.csv"
    batch_size: int = 20
    labels_path: str = "labels.json"
    num_workers: int = 2
    SpectConfig: SpectConfig = field(default_factory=lambda: SpectConfig())


@dataclass
class TrainingConfig:
    """Loop control."""

    epochs: int = 70
    seed: int = 1
    log_interval: int = 1  # steps between progress lines
    max_steps: int = 0  # stop after this many steps in total (0: run all epochs); for smoke runs
    max_bad_steps: int = 10  # consecutive non-finite steps before the run stops


@dataclass
class OptimConfig:
    """Adam with a step-wise LR schedule, L2 weight decay, gradient-norm clipping and static loss scaling."""

    learning_rate: float = 3e-4
    learning_anneal: float = 1.1  # LR divided by this after every epoch past constant_epochs
    constant_epochs: int = -1  # epochs at the initial LR before annealing; -1: epochs // 2 + 1 (upstream)
    weight_decay: float = 1e-5
    eps: float = 1e-8
    betas: tuple = (0.9, 0.999)
    max_norm: float = 400.0  # global gradient-norm clip; 0 disables
    loss_scale: float = 1024.0  # the loss is multiplied and the gradients divided by it (fp16 safety)


@dataclass
class CheckpointConfig:
    """Where and how often checkpoints are written."""

    ckpt_file_name_prefix: str = "DeepSpeech"
    ckpt_path: str = "./checkpoint"
    keep_checkpoint_max: int = 10
    # A checkpoint every N steps (the lab's listing: every 5) or every S seconds of training, whichever comes first
    # (0 turns one off), plus one at every epoch end. Periodic ones are written by a background thread.
    save_checkpoint_steps: int = 5
    save_checkpoint_seconds: float = 300.0


@dataclass
class LMConfig:
    """Decoding: greedy, or pyctcdecode beam search with an optional n-gram LM (src/beam_decoder.py)."""

    decoder_type: str = "greedy"  # greedy | beam (eval/transcribe --decoder)
    lm_path: str = ""  # ARPA (.arpa, .arpa.gz) or KenLM binary; beam only (--lm_path)
    alpha: float = 1.818182  # LM weight: each word adds alpha * ln p_LM (--alpha)
    beta: float = 0.0  # word insertion bonus added per word (--beta)
    beam_width: int = 128  # (--beam_width)
    cutoff_top_n: int = 40  # labels considered per frame: at most the top n ...
    cutoff_prob: float = 1.0  # ... and only those within this cumulative probability (1.0: no cut)


@dataclass
class TrainConfig:
    """Everything train.py needs."""

    device_target: str = "CPU"
    TrainingConfig: TrainingConfig = field(default_factory=TrainingConfig)
    DataConfig: TrainDataConfig = field(default_factory=TrainDataConfig)
    ModelConfig: ModelConfig = field(default_factory=ModelConfig)
    OptimConfig: OptimConfig = field(default_factory=OptimConfig)
    CheckpointConfig: CheckpointConfig = field(default_factory=CheckpointConfig)


@dataclass
class EvalConfig:
    """Everything eval.py needs."""

    device_target: str = "CPU"
    save_output: str = ""  # per-utterance results (.csv, or .json); "" = eval_results.csv beside the checkpoint
    verbose: bool = True
    DataConfig: EvalDataConfig = field(default_factory=EvalDataConfig)
    ModelConfig: ModelConfig = field(default_factory=ModelConfig)
    LMConfig: LMConfig = field(default_factory=LMConfig)


DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
DECODER_TYPES = ("greedy", "beam")


def _convert(value: str, default: Any, key: str) -> Any:
    """Convert a command-line string to the type of the default value."""
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return low in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.strip("()[] ").split(",")
            if len(items) != len(default):
                raise ValueError(value)
            return tuple(type(d)(v) for d, v in zip(default, items))
    except ValueError:
        raise ValueError(f"--set {key}: cannot convert {value!r} to {type(default).__name__}") from None
    return value


def set_value(cfg: Any, dotted: str, value: Any, from_string: bool = True) -> None:
    """Set `Section.sub.key` on a config tree, converting strings to the default's type.

    Raises:
        KeyError: the path names no existing key (unknown keys are rejected, never added).
    """
    *sections, key = dotted.split(".")
    node = cfg
    for name in sections:
        if not dataclasses.is_dataclass(node) or not hasattr(node, name):
            raise KeyError(f"unknown config section {name!r} in {dotted!r}")
        node = getattr(node, name)
    if not dataclasses.is_dataclass(node) or key not in {f.name for f in dataclasses.fields(node)}:
        raise KeyError(f"unknown config key {dotted!r}")
    default = getattr(node, key)
    if dataclasses.is_dataclass(default):
        raise KeyError(f"{dotted!r} is a section, not a value")
    setattr(node, key, _convert(value, default, dotted) if from_string else value)


def apply_overrides(cfg: Any, overrides: list[str] | None) -> Any:
    """Apply `Section.key=value` strings in order."""
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set expects Section.key=value, got {item!r}")
        dotted, value = item.split("=", 1)
        set_value(cfg, dotted.strip(), value.strip())
    return cfg


def to_dict(cfg: Any) -> dict:
    """The config tree as plain JSON-able data."""
    return dataclasses.asdict(cfg)


def update_from_dict(cfg: Any, data: dict, prefix: str = "", strict: bool = False) -> None:
    """Copy matching keys from `data` (e.g. a saved config.json) into `cfg`; unknown keys raise if `strict`."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if not hasattr(cfg, key):
            if strict:
                raise KeyError(f"unknown config key {dotted!r}")
            continue
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if isinstance(value, dict):
                update_from_dict(current, value, dotted + ".", strict)
            continue
        setattr(cfg, key, tuple(value) if isinstance(current, tuple) else value)


def save_config(cfg: Any, directory: str | Path) -> Path:
    """Write the resolved config as `<directory>/config.json` (atomically)."""
    return write_text(Path(directory) / CONFIG_FILE_NAME, json.dumps(to_dict(cfg), indent=2, sort_keys=False) + "\n")


def find_run_config(ckpt_path: str | Path) -> Path | None:
    """The config.json saved next to a checkpoint (its folder or the folder's parent), if any."""
    ckpt_path = Path(ckpt_path)
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load_run_model_config(ckpt_path: str | Path, spect: SpectConfig, model: ModelConfig) -> Path | None:
    """Copy the training run's SpectConfig and ModelConfig into `spect`/`model` when a config.json exists."""
    path = find_run_config(ckpt_path)
    if path is None:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    update_from_dict(model, data.get("ModelConfig", {}))
    update_from_dict(spect, data.get("DataConfig", {}).get("SpectConfig", {}))
    logger.info("rebuilt ModelConfig and SpectConfig from %s", path)
    return path


def resolve_path(path: str) -> str:
    """Relative paths in the config are taken from the current folder, then from the repo root."""
    if not path:
        return path
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return str(p.resolve()) if p.exists() else str(p)
    alt = REPO_ROOT / p
    return str(alt) if alt.exists() else str(p)


def drop_absent_lab_val_manifest(data: TrainDataConfig) -> None:
    """Validation is off when val_manifest is still the lab's default path and that file does not exist.

    A path given explicitly must exist (checked by validate_train); the default is only a convenience for the
    lab's layout, where `data/libri_val_manifest.csv` appears after the JSON-to-CSV step.
    """
    if data.val_manifest == LAB_VAL_MANIFEST and not Path(data.val_manifest).is_file():
        logger.info("no %s: training without per-epoch validation", LAB_VAL_MANIFEST)
        data.val_manifest = ""


def validate_spect(spect: SpectConfig) -> None:
    """Check the front end: the window must be one scipy accepts, sizes positive."""
    from scipy.signal import get_window  # scipy is a runtime dependency; imported here to keep import light

    if spect.sample_rate <= 0 or spect.window_size <= 0 or spect.window_stride <= 0:
        raise ValueError("SpectConfig: sample_rate, window_size and window_stride must be positive")
    try:
        get_window(spect.window, 8)
    except ValueError as err:
        raise ValueError(f"SpectConfig.window {spect.window!r} is not a scipy.signal window: {err}") from None


def validate_model(model: ModelConfig) -> None:
    """Only LSTM is implemented; sizes must be positive."""
    if model.rnn_type.upper() != "LSTM":
        raise ValueError(f"ModelConfig.rnn_type {model.rnn_type!r} is not supported (only LSTM)")
    if model.hidden_size <= 0 or model.hidden_layers <= 0:
        raise ValueError("ModelConfig: hidden_size and hidden_layers must be positive")


def validate_train(cfg: TrainConfig) -> None:
    """Validate a training config once at start-up."""
    if cfg.device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {cfg.device_target!r}")
    validate_spect(cfg.DataConfig.SpectConfig)
    validate_model(cfg.ModelConfig)
    d, o, t = cfg.DataConfig, cfg.OptimConfig, cfg.TrainingConfig
    if d.batch_size <= 0 or t.epochs <= 0 or d.num_workers <= 0:
        raise ValueError("batch_size, epochs and num_workers must be positive")
    if o.learning_rate <= 0 or o.learning_anneal <= 0 or o.loss_scale <= 0 or o.eps <= 0:
        raise ValueError("OptimConfig: learning_rate, learning_anneal, loss_scale and eps must be positive")
    if o.weight_decay < 0 or o.max_norm < 0 or len(o.betas) != 2:
        raise ValueError("OptimConfig: weight_decay and max_norm must be >= 0, betas a pair")
    k = cfg.CheckpointConfig
    if k.keep_checkpoint_max <= 0:
        raise ValueError("CheckpointConfig.keep_checkpoint_max must be positive")
    if k.save_checkpoint_steps < 0 or not k.save_checkpoint_seconds >= 0:
        raise ValueError("CheckpointConfig: save_checkpoint_steps and save_checkpoint_seconds must be >= 0 (0: off)")
    for name in ("train_manifest", "val_manifest"):
        path = getattr(d, name)
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"DataConfig.{name} not found: {path}")
    if not Path(d.labels_path).is_file():
        raise FileNotFoundError(f"DataConfig.labels_path not found: {d.labels_path}")


def validate_eval(cfg: EvalConfig) -> None:
    """Validate an evaluation config once at start-up."""
    if cfg.device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {cfg.device_target!r}")
    validate_spect(cfg.DataConfig.SpectConfig)
    validate_model(cfg.ModelConfig)
    if cfg.DataConfig.batch_size <= 0:
        raise ValueError("batch_size must be positive")
    if not Path(cfg.DataConfig.test_manifest).is_file():
        raise FileNotFoundError(f"DataConfig.test_manifest not found: {cfg.DataConfig.test_manifest}")
    if not Path(cfg.DataConfig.labels_path).is_file():
        raise FileNotFoundError(f"DataConfig.labels_path not found: {cfg.DataConfig.labels_path}")


def validate_lm(lm: LMConfig) -> None:
    """Check LMConfig once, before any audio is processed; errors name the bad value."""
    if lm.decoder_type not in DECODER_TYPES:
        raise ValueError(f"LMConfig.decoder_type must be one of {DECODER_TYPES}, got {lm.decoder_type!r}")
    if lm.beam_width <= 0 or lm.cutoff_top_n <= 0:
        raise ValueError("LMConfig: beam_width and cutoff_top_n must be positive")
    if not 0 < lm.cutoff_prob <= 1:
        raise ValueError(f"LMConfig.cutoff_prob must be in (0, 1], got {lm.cutoff_prob}")
    if lm.lm_path and lm.decoder_type != "beam":
        raise ValueError("LMConfig.lm_path is set but decoder_type is 'greedy': pass --decoder beam to use the LM")
    if lm.lm_path and not Path(lm.lm_path).is_file():
        raise FileNotFoundError(f"LMConfig.lm_path not found: {lm.lm_path}")
