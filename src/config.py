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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src import shapes
from src.atomic import write_text

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE_NAME = "config.json"
LAB_VAL_MANIFEST = "data/libri_val_manifest.csv"  # the lab's config names it; used when it exists
# Padded audio seconds one training forward/backward pass holds at most (TrainingConfig.micro_batch_seconds):
# measured in README "One epoch takes 50 hours" (the lab's batch 20 of clips up to ~17 s in under 16 GB).
MICRO_BATCH_SECONDS = 70.0


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


LSTM_KERNELS = ("project", "mindspore")


@dataclass
class ModelConfig:
    """Network size. Only LSTM exists upstream and here."""

    rnn_type: str = "LSTM"
    hidden_size: int = 1024
    hidden_layers: int = 5
    # Training memory, not architecture: recompute each LSTM's forward in the backward pass instead of keeping
    # its workspace (the same numbers; less memory, one more LSTM forward per step).
    recompute_rnn: bool = False
    # Training's LSTM kernel: "project" (src/lstm_kernel.py, built on first use; MindSpore's where it cannot be
    # built) keeps 4 floats x hidden per frame and no weight copies; "mindspore" is MindSpore's fused kernel.
    lstm_kernel: str = "project"


@dataclass
class TrainDataConfig:
    """Training data: manifests, batching, labels."""

    train_manifest: str = "data/libri_train_manifest.csv"
    val_manifest: str = LAB_VAL_MANIFEST  # per-epoch WER, best checkpoint; off when "" or this default is absent
    batch_size: int = 20
    # Batches by duration: a cap on padded audio seconds per batch (clips x padded length) instead of batch_size
    # clips, so every length's step needs about the same memory; 0 keeps the fixed batch_size.
    batch_seconds: float = 0.0
    # Shuffled epochs run the batches of one padded length consecutively (each new length compiles a graph).
    group_by_length: bool = True
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
    batch_seconds: float = 0.0  # cap on padded audio seconds per batch instead of batch_size clips; 0: off
    # Longest clip the model sees at once: longer clips are cut at quiet points into segments of at most this
    # many seconds, run one at a time, their hypotheses joined (0: no limit). Bounds the memory of one step.
    max_eval_seconds: float = 60.0
    # At a fixed batch_size, a batch is cut short where its padded audio (clips x padded length) would pass this,
    # so one long clip never pads batch_size - 1 others to its length: evaluation needs no more memory than about
    # the lab's training batch (20 clips of 16 s). Outputs do not change (padding is masked). 0: no limit.
    max_batch_seconds: float = 320.0
    labels_path: str = "labels.json"
    num_workers: int = 2
    skip_invalid: bool = False  # skip invalid rows and unreadable clips (reported) and still exit 0 (--skip_invalid)
    SpectConfig: SpectConfig = field(default_factory=lambda: SpectConfig())


@dataclass
class TrainingConfig:
    """Loop control."""

    epochs: int = 70
    seed: int = 1
    log_interval: int = 1  # steps between progress lines
    max_steps: int = 0  # stop after this many steps in total (0: run all epochs); for smoke runs
    max_bad_steps: int = 10  # consecutive non-finite steps before the run stops
    release_memory_on_new_shape: bool = True  # free MindSpore's cached memory when the padded length changes
    # Memory cap: a batch holding more padded audio seconds (clips x padded length) than this is split into equal
    # micro-batches whose gradients are summed before the one optimizer update (same batch, same LR schedule;
    # batch-norm statistics per micro-batch). 0: never split.
    micro_batch_seconds: float = MICRO_BATCH_SECONDS


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
    background_save: bool = True  # False: periodic checkpoints block the step loop (less CPU and memory in total)


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
class ExportConfig:
    """export.py: the exported file and its static input shape."""

    file_format: str = "MINDIR"  # MINDIR | ONNX (--file_format)
    file_name: str = "deepspeech2"  # output path without suffix (--file_name)
    batch_size: int = 1  # static batch of the exported input (--batch_size)
    # Seconds of audio the static input holds (--input_seconds): the model zoo's 3501 frames; shorter clips are
    # padded and masked, longer ones need transcribe.py's segments.
    input_seconds: float = 35.0


@dataclass
class TranscribeConfig:
    """transcribe.py and serve.py: how recordings are cut into pieces the model sees at once."""

    segment_seconds: float = shapes.DEFAULT_SEGMENT_SECONDS  # longest piece (--segment_seconds)
    frames: int = 0  # static input frames of an exported model when the file does not say (--frames; 0: read it)


@dataclass
class EvalConfig:
    """Everything eval.py, export.py, transcribe.py and tools/tune_lm.py need (each uses its own sections)."""

    device_target: str = "CPU"
    save_output: str = ""  # per-utterance results (.csv, or .json); "" = eval_results.csv beside the checkpoint
    verbose: bool = True
    # eval.py: free MindSpore's cached memory when the padded length changes (batches run in order of duration,
    # so each length comes once): RSS stays near one length's footprint instead of growing with every length
    release_memory_on_new_shape: bool = True
    DataConfig: EvalDataConfig = field(default_factory=EvalDataConfig)
    ModelConfig: ModelConfig = field(default_factory=ModelConfig)
    LMConfig: LMConfig = field(default_factory=LMConfig)
    ExportConfig: ExportConfig = field(default_factory=ExportConfig)
    TranscribeConfig: TranscribeConfig = field(default_factory=TranscribeConfig)


DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
DECODER_TYPES = ("greedy", "beam")
EXPORT_FORMATS = ("MINDIR", "ONNX")


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


def check_value(value: Any, default: Any, dotted: str, source: str = "") -> Any:
    """A value from a JSON file, type-checked against the default's type exactly as `--set` converts it.

    int keys take JSON integers only (not 32.5, not "4"), float keys integers or floats, bool keys true/false,
    str keys strings, tuple keys lists of the same length and element types.
    Raises:
        ValueError: naming the source file, the key, the expected type and the value found.
    """
    where = f"{source}: " if source else ""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ValueError(
                f"{where}{dotted} must be a list of {len(default)} values like {list(default)}, got {value!r}"
            )
        return tuple(check_value(v, d, f"{dotted}[{i}]", source) for i, (v, d) in enumerate(zip(value, default)))
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ValueError(
            f"{where}{dotted} must be {type(default).__name__} (like {default!r}), got {type(value).__name__} {value!r}"
        )
    return value


def update_from_dict(cfg: Any, data: dict, prefix: str = "", strict: bool = False, source: str = "") -> None:
    """Copy matching keys from `data` (e.g. a saved config.json) into `cfg`, type-checked like `--set`.

    Args:
        strict: unknown keys raise (a --config file); otherwise they are ignored (a newer run's config.json).
        source: the file the data came from, named in errors.
    Raises:
        KeyError: unknown key (strict). ValueError: a value of the wrong type, or a section that is not an object.
    """
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ValueError(f"{where}{prefix.rstrip('.') or 'the config'} must be a JSON object, got {data!r}")
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if not hasattr(cfg, key) or key not in {f.name for f in dataclasses.fields(cfg)}:
            if strict:
                raise KeyError(f"{where}unknown config key {dotted!r}")
            continue
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            update_from_dict(current, value, dotted + ".", strict, source)
            continue
        setattr(cfg, key, check_value(value, current, dotted, source))


def load_json_file(path: str | Path, what: str = "config") -> Any:
    """Parse a JSON file; unreadable, non-UTF-8 or invalid JSON raises ValueError naming the file (and line)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory, not a JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None


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
    """Copy the training run's SpectConfig and ModelConfig into `spect`/`model` when a config.json exists.

    The values are type-checked (as `--set` would) and range-checked; errors name the file and the key.
    """
    path = find_run_config(ckpt_path)
    if path is None:
        return None
    data = load_json_file(path, "run config")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    update_from_dict(model, data.get("ModelConfig", {}), "ModelConfig.", source=str(path))
    data_section = data.get("DataConfig", {})
    spect_data = data_section.get("SpectConfig", {}) if isinstance(data_section, dict) else data_section
    update_from_dict(spect, spect_data, "DataConfig.SpectConfig.", source=str(path))
    try:
        validate_numbers(model, "ModelConfig.")
        validate_numbers(spect, "DataConfig.SpectConfig.")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
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


UINT32_MAX = 2**32 - 1
# Range of every numeric key (by field name; the same name means the same thing in every section).
# (low, high, low_open): value must be > low (low_open) or >= low, and <= high. Keys not listed need only be finite.
RANGES: dict[str, tuple[float, float, bool]] = {
    "sample_rate": (0, math.inf, True),
    "window_size": (0, math.inf, True),
    "window_stride": (0, math.inf, True),
    "noise_prob": (0, 1, False),
    "noise_min": (0, math.inf, False),
    "noise_max": (0, math.inf, False),
    "hidden_size": (0, math.inf, True),
    "hidden_layers": (0, math.inf, True),
    "batch_size": (0, math.inf, True),
    "batch_seconds": (0, math.inf, False),  # 0: fixed batch_size
    "max_eval_seconds": (0, math.inf, False),  # 0: no limit
    "micro_batch_seconds": (0, math.inf, False),  # 0: never split a batch
    "num_workers": (0, math.inf, True),
    "max_duration": (0, math.inf, False),
    "epochs": (0, math.inf, True),
    "seed": (0, UINT32_MAX, False),
    "log_interval": (0, math.inf, True),
    "max_steps": (0, math.inf, False),
    "max_bad_steps": (0, math.inf, True),
    "learning_rate": (0, math.inf, True),
    "learning_anneal": (0, math.inf, True),
    "constant_epochs": (-1, math.inf, False),
    "weight_decay": (0, math.inf, False),
    "eps": (0, math.inf, True),
    "max_norm": (0, math.inf, False),
    "loss_scale": (0, math.inf, True),
    "keep_checkpoint_max": (0, math.inf, True),
    "save_checkpoint_steps": (0, math.inf, False),  # 0: off
    "save_checkpoint_seconds": (0, math.inf, False),  # 0: off
    "beam_width": (0, math.inf, True),
    "cutoff_top_n": (0, math.inf, True),
    "cutoff_prob": (0, 1, True),
}


def _check_number(value: float, dotted: str, name: str) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{dotted} must be a finite number, got {value}")
    if name in RANGES:
        low, high, low_open = RANGES[name]
        if value < low or (low_open and value == low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            bound += f" and <= {high:g}" if math.isfinite(high) else ""
            raise ValueError(f"{dotted} must be {bound}, got {value}")


def validate_numbers(cfg: Any, prefix: str = "") -> None:
    """Every number in a config tree finite and in its range (RANGES); errors name the dotted key.

    NaN passes any `<= 0` test, so this checks `isfinite` first: a NaN learning rate or max_norm used to train
    silently into NaN weights or switch clipping off.
    """
    for f in dataclasses.fields(cfg):
        value, dotted = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            validate_numbers(value, dotted + ".")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    _check_number(item, f"{dotted}[{i}]", "")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_number(value, dotted, f.name)


def check_plain_name(value: str, dotted: str) -> None:
    """A file-name prefix must be one plain name: no separators, no '..', not hidden, no glob characters."""
    bad = (
        not value
        or value in (".", "..")
        or value.startswith(".")
        or any(c in value for c in "/\\*?[]\0")
        or value != value.strip()
    )
    if bad:
        raise ValueError(
            f"{dotted} must be a plain file-name prefix (letters, digits, '-', '_'; no path separators or '..'), "
            f"got {value!r}"
        )


def validate_spect(spect: SpectConfig) -> None:
    """Check the front end: the window must be one scipy accepts, sizes finite and positive."""
    from scipy.signal import get_window  # scipy is a runtime dependency; imported here to keep import light

    validate_numbers(spect, "DataConfig.SpectConfig.")
    try:
        get_window(spect.window, 8)
    except ValueError as err:
        raise ValueError(f"SpectConfig.window {spect.window!r} is not a scipy.signal window: {err}") from None


def validate_model(model: ModelConfig) -> None:
    """Only LSTM is implemented; sizes must be positive; the LSTM kernel one of LSTM_KERNELS."""
    if model.rnn_type.upper() != "LSTM":
        raise ValueError(f"ModelConfig.rnn_type {model.rnn_type!r} is not supported (only LSTM)")
    if model.lstm_kernel not in LSTM_KERNELS:
        raise ValueError(f"ModelConfig.lstm_kernel must be one of {LSTM_KERNELS}, got {model.lstm_kernel!r}")
    validate_numbers(model, "ModelConfig.")


def validate_train(cfg: TrainConfig) -> None:
    """Validate a training config once at start-up: types, finite numbers in range, names, files."""
    if cfg.device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {cfg.device_target!r}")
    validate_numbers(cfg)
    validate_spect(cfg.DataConfig.SpectConfig)
    validate_model(cfg.ModelConfig)
    d, o = cfg.DataConfig, cfg.OptimConfig
    a = d.AugmentationConfig
    if a.noise_min > a.noise_max:
        raise ValueError(f"AugmentationConfig.noise_min ({a.noise_min}) must not exceed noise_max ({a.noise_max})")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        raise ValueError(f"OptimConfig.betas must be two numbers in [0, 1), got {o.betas}")
    check_plain_name(cfg.CheckpointConfig.ckpt_file_name_prefix, "CheckpointConfig.ckpt_file_name_prefix")
    if not cfg.CheckpointConfig.ckpt_path:
        raise ValueError("CheckpointConfig.ckpt_path (--save_dir) must not be empty")
    for name in ("train_manifest", "val_manifest"):
        path = getattr(d, name)
        if path and not Path(path).is_file():
            what = "is a directory, not a manifest file" if Path(path).is_dir() else "not found"
            raise FileNotFoundError(f"DataConfig.{name} {what}: {path}")
    if not d.train_manifest:
        raise ValueError("DataConfig.train_manifest (--train_manifest) is required")
    if not Path(d.labels_path).is_file():
        raise FileNotFoundError(f"DataConfig.labels_path not found: {d.labels_path}")


def validate_eval(cfg: EvalConfig) -> None:
    """Validate an evaluation config once at start-up."""
    if cfg.device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {cfg.device_target!r}")
    validate_numbers(cfg)
    validate_spect(cfg.DataConfig.SpectConfig)
    validate_model(cfg.ModelConfig)
    d = cfg.DataConfig
    if d.max_batch_seconds < 0:
        raise ValueError(f"DataConfig.max_batch_seconds must be >= 0 (0: no limit), got {d.max_batch_seconds}")
    if d.max_eval_seconds != 0 and d.max_eval_seconds <= 1.0:
        raise ValueError(f"DataConfig.max_eval_seconds must exceed 1 s (0: no limit), got {d.max_eval_seconds}")
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


def validate_inference(cfg: EvalConfig) -> None:
    """Validate what export and transcription use: device, features, network, labels and their own sections."""
    if cfg.device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target must be one of {DEVICE_TARGETS}, got {cfg.device_target!r}")
    validate_spect(cfg.DataConfig.SpectConfig)
    validate_model(cfg.ModelConfig)
    e, t = cfg.ExportConfig, cfg.TranscribeConfig
    if e.file_format not in EXPORT_FORMATS:
        raise ValueError(f"ExportConfig.file_format must be one of {EXPORT_FORMATS}, got {e.file_format!r}")
    if e.batch_size < 1:
        raise ValueError(f"ExportConfig.batch_size must be at least 1, got {e.batch_size}")
    if not math.isfinite(e.input_seconds) or e.input_seconds <= 1.0:
        raise ValueError(
            "ExportConfig.input_seconds must be a finite number of seconds above 1 (transcribe.py needs segments "
            f"longer than 1 s), got {e.input_seconds}"
        )
    if not math.isfinite(t.segment_seconds) or t.segment_seconds <= 1.0:
        raise ValueError(
            f"TranscribeConfig.segment_seconds must be a finite number of seconds above 1, got {t.segment_seconds}"
        )
    if t.frames < 0:
        raise ValueError(f"TranscribeConfig.frames must be >= 0, got {t.frames}")
    if not Path(cfg.DataConfig.labels_path).is_file():
        raise FileNotFoundError(f"DataConfig.labels_path not found: {cfg.DataConfig.labels_path}")
