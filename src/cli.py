"""Command-line flags shared by the entry scripts, and turning them into a validated config."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Callable

from src import config as C

logger = logging.getLogger(__name__)


DEBUG_ENV = "DS2_DEBUG"
# What a user can cause: bad values, missing/unreadable/unwritable files, bad checkpoints (CheckpointError is a
# ValueError), a busy run directory. Anything else (TypeError, AttributeError, RuntimeError from MindSpore) is a
# bug or an environment failure and keeps its traceback.
USER_ERRORS = (ValueError, KeyError, OSError)


def debug_requested(argv: list[str] | None) -> bool:
    """--debug on the command line, or DS2_DEBUG=1 in the environment: show tracebacks for user errors too."""
    args = sys.argv[1:] if argv is None else list(argv)
    return "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def error_line(err: BaseException) -> str:
    """The user-facing text of an error: KeyError without its quotes, never a repr."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return str(text) or type(err).__name__


def entry_point(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a script's main(argv): a user error prints `error: <message>` on stderr and returns 2.

    The messages name the file (and line) or the config key; `--debug` or DS2_DEBUG=1 re-raises for the traceback.
    """

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except USER_ERRORS as err:
            if debug_requested(argv):
                raise
            logging.getLogger(main.__module__).debug("user error", exc_info=True)
            print(f"error: {error_line(err)}", file=sys.stderr, flush=True)
            return 2

    return wrapped


def add_debug_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks for user errors (or {DEBUG_ENV}=1)")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    add_debug_arg(parser)
    parser.add_argument("--device_target", choices=C.DEVICE_TARGETS, default=None, help="default CPU")
    parser.add_argument("--device_id", type=int, default=None, help="device index for GPU/Ascend")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument(
        "--batch_seconds", type=float, default=None, help="cap padded audio seconds per batch instead (0: off)"
    )
    parser.add_argument("--labels_path", default=None, help="default labels.json")
    parser.add_argument("--config", default=None, help="JSON file of config values (same layout as config.json)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="Section.key=value", help="override any config value"
    )


def _apply_file(cfg, path: str | None) -> None:
    """A --config file: unknown keys and values of the wrong type are refused, naming the file and the key."""
    if path:
        C.update_from_dict(cfg, C.load_json_file(path, "--config file"), strict=True, source=str(path))


# Named flags are shorthands for `--set Section.key=value`; each entry point reads the flags its parser defines.
TRAIN_FLAGS = {
    "train_manifest": "DataConfig.train_manifest",
    "val_manifest": "DataConfig.val_manifest",
    "batch_size": "DataConfig.batch_size",
    "batch_seconds": "DataConfig.batch_seconds",
    "labels_path": "DataConfig.labels_path",
    "micro_batch_seconds": "TrainingConfig.micro_batch_seconds",
    "epochs": "TrainingConfig.epochs",
    "save_dir": "CheckpointConfig.ckpt_path",
    "device_target": "device_target",
}
EVAL_FLAGS = {
    "test_manifest": "DataConfig.test_manifest",
    "batch_size": "DataConfig.batch_size",
    "batch_seconds": "DataConfig.batch_seconds",
    "labels_path": "DataConfig.labels_path",
    "save_output": "save_output",
    "device_target": "device_target",
}
EXPORT_FLAGS = {
    "file_format": "ExportConfig.file_format",
    "file_name": "ExportConfig.file_name",
    "batch_size": "ExportConfig.batch_size",
    "input_seconds": "ExportConfig.input_seconds",
    "labels_path": "DataConfig.labels_path",
    "device_target": "device_target",
}
TRANSCRIBE_FLAGS = {
    "segment_seconds": "TranscribeConfig.segment_seconds",
    "frames": "TranscribeConfig.frames",
    "labels_path": "DataConfig.labels_path",
    "device_target": "device_target",
}


def build_config(args: argparse.Namespace, flags: dict[str, str], model_path: str | None = None):
    """The one way every entry point turns its arguments into a config.

    Defaults <- the training run's config.json next to `model_path` (features and network) <- --config file <-
    named flags (`flags`: flag -> dotted key) <- decoder flags <- --set. Paths are resolved, nothing is validated
    (each entry point validates what it uses).

    Returns:
        a TrainConfig when `model_path` is None, else an EvalConfig.
    """
    cfg = C.TrainConfig() if model_path is None else C.EvalConfig()
    if model_path is not None:
        found = C.load_run_model_config(model_path, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
        if found is None:
            logger.info("no config.json next to %s: using the default (model zoo) network and features", model_path)
    _apply_file(cfg, getattr(args, "config", None))
    for flag, key in flags.items():
        value = getattr(args, flag, None)
        if value is not None:
            C.set_value(cfg, key, value, from_string=False)
    C.apply_overrides(cfg, decoder_overrides(args) + list(getattr(args, "set", None) or []))
    cfg.DataConfig.labels_path = C.resolve_path(cfg.DataConfig.labels_path)
    return cfg


def prepare_resume(args: argparse.Namespace):
    """--resume: find the checkpoint and check it holds a training position, before anything is written.

    A --pre_trained_model_path is checked too (exists, matches its sha256 sidecar or legacy CRC).

    Without --config/--save_dir the run's own config.json and directory are used (set on `args`).
    Returns:
        (checkpoint path, its parameters), or None without --resume.
    Raises:
        CheckpointError: no such file or directory, nothing readable in it, or a weights-only (best) checkpoint.
    """
    from src.checkpoint import check_readable, find_resume_checkpoint, require_training_state  # MindSpore

    if getattr(args, "pre_trained_model_path", ""):
        check_readable(args.pre_trained_model_path)
    if not args.resume:
        return None

    path, params = find_resume_checkpoint(args.resume)
    require_training_state(path, params)
    if args.config is None and args.save_dir is None:
        found = C.find_run_config(path)
        args.config, args.save_dir = (str(found), str(found.parent)) if found else (None, None)
    return path, params


def build_train_config(args: argparse.Namespace) -> C.TrainConfig:
    """train.py's config (`build_config` with TRAIN_FLAGS), validated."""
    cfg = build_config(args, TRAIN_FLAGS)
    C.drop_absent_lab_val_manifest(cfg.DataConfig)
    C.validate_train(cfg)
    return cfg


def build_eval_config(args: argparse.Namespace, ckpt: str) -> C.EvalConfig:
    """eval.py's and tools/tune_lm.py's config (`build_config` with EVAL_FLAGS over the run's config.json)."""
    cfg = build_config(args, EVAL_FLAGS, ckpt)
    C.validate_eval(cfg)
    return cfg


def build_inference_config(args: argparse.Namespace, model_path: str, flags: dict[str, str]) -> C.EvalConfig:
    """export.py's (EXPORT_FLAGS) and transcribe.py's / serve.py's (TRANSCRIBE_FLAGS) config, validated."""
    cfg = build_config(args, flags, model_path)
    C.validate_inference(cfg)
    return cfg


def log_config(cfg) -> None:
    logger.info("config: %s", json.dumps(C.to_dict(cfg), sort_keys=False))


def add_decoder_args(parser: argparse.ArgumentParser) -> None:
    """--decoder/--lm_path/--alpha/--beta/--beam_width: shorthands for --set LMConfig.<key>=value."""
    group = parser.add_argument_group("decoding (LMConfig)")
    group.add_argument("--decoder", choices=C.DECODER_TYPES, default=None, help="default greedy")
    group.add_argument("--lm_path", default=None, help="n-gram LM: ARPA (.arpa, .arpa.gz) or KenLM binary")
    group.add_argument("--alpha", type=float, default=None, help="LM weight")
    group.add_argument("--beta", type=float, default=None, help="word insertion bonus")
    group.add_argument("--beam_width", type=int, default=None)


def decoder_overrides(args: argparse.Namespace) -> list[str]:
    """The decoding flags as `LMConfig.key=value` strings, to go before the user's --set (which wins)."""
    names = {"decoder": "decoder_type", "lm_path": "lm_path", "alpha": "alpha", "beta": "beta", "beam_width": None}
    out = []
    for flag, key in names.items():
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"LMConfig.{key or flag}={value}")
    if getattr(args, "lm_path", None) and getattr(args, "decoder", None) is None:
        out.append("LMConfig.decoder_type=beam")  # an LM only makes sense with beam search
    return out
