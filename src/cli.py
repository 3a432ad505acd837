"""Command-line flags shared by the entry scripts, and turning them into a validated config."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from src import config as C

logger = logging.getLogger(__name__)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device_target", choices=C.DEVICE_TARGETS, default=None, help="default CPU")
    parser.add_argument("--device_id", type=int, default=None, help="device index for GPU/Ascend")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--labels_path", default=None, help="default labels.json")
    parser.add_argument("--config", default=None, help="JSON file of config values (same layout as config.json)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="Section.key=value", help="override any config value"
    )


def _apply_file(cfg, path: str | None) -> None:
    if path:
        C.update_from_dict(cfg, json.loads(Path(path).read_text(encoding="utf-8")), strict=True)


def _apply_named(cfg, data_cfg, args, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            setattr(data_cfg, name, value)
    if args.device_target is not None:
        cfg.device_target = args.device_target


def build_train_config(args: argparse.Namespace) -> C.TrainConfig:
    """Defaults <- --config file <- named flags <- --set overrides; then validated."""
    cfg = C.TrainConfig()
    _apply_file(cfg, args.config)
    _apply_named(cfg, cfg.DataConfig, args, ("train_manifest", "val_manifest", "batch_size", "labels_path"))
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
    _apply_named(cfg, cfg.DataConfig, args, ("test_manifest", "batch_size", "labels_path"))
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
