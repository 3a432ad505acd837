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


def _apply_named(cfg, data_cfg, args, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            setattr(data_cfg, name, value)
    if args.device_target is not None:
        cfg.device_target = args.device_target


def prepare_resume(args: argparse.Namespace):
    """--resume: find the checkpoint and check it holds a training position, before anything is written.

    A --pre_trained_model_path is checked too (exists, CRC intact).

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
    """Defaults <- --config file <- named flags <- --set overrides; then validated."""
    cfg = C.TrainConfig()
    _apply_file(cfg, args.config)
    names = ("train_manifest", "val_manifest", "batch_size", "batch_seconds", "labels_path")
    _apply_named(cfg, cfg.DataConfig, args, names)
    if args.epochs is not None:
        cfg.TrainingConfig.epochs = args.epochs
    if args.save_dir is not None:
        cfg.CheckpointConfig.ckpt_path = args.save_dir
    C.apply_overrides(cfg, args.set)
    d = cfg.DataConfig
    d.labels_path = C.resolve_path(d.labels_path)
    C.drop_absent_lab_val_manifest(d)
    C.validate_train(cfg)
    return cfg


def build_eval_config(args: argparse.Namespace, ckpt: str) -> C.EvalConfig:
    """Defaults <- the training run's config.json (model and features) <- file <- flags <- --set; validated."""
    cfg = C.EvalConfig()
    found = C.load_run_model_config(ckpt, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    if found is None:
        logger.info("no config.json next to %s: using the default (model zoo) network and features", ckpt)
    _apply_file(cfg, args.config)
    _apply_named(cfg, cfg.DataConfig, args, ("test_manifest", "batch_size", "batch_seconds", "labels_path"))
    C.apply_overrides(cfg, args.set)
    cfg.DataConfig.labels_path = C.resolve_path(cfg.DataConfig.labels_path)
    C.validate_eval(cfg)
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
