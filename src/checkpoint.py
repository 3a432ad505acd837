"""Checkpoint I/O: atomic verified saves, clear errors for broken files, explicit key mapping and reports."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms

logger = logging.getLogger(__name__)

OPTIMIZER_PREFIXES = ("moment1.", "moment2.")
TRAINING_STATE_KEYS = (
    "global_step",
    "learning_rate",
    "beta1_power",
    "beta2_power",
    "skipped_steps",
    "epoch_num",
    "step_num",
    "global_step_num",
    "val_wer",
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt or does not fit the network; the message names it."""


def load_param_dict(path: str | Path) -> dict:
    """Read a .ckpt into {name: Parameter}; truncated or corrupt files raise CheckpointError naming them."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {path}")
    try:
        params = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, TypeError, OSError) as err:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {str(err).splitlines()[0]}") from None
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    return params


def rename_legacy_keys(params: dict) -> tuple[dict, int]:
    """Strip wrapper prefixes (`network.`, `network.network.`) left by training cells in older checkpoints.

    Returns:
        (renamed dict, number of keys mapped); the count is logged by the caller.
    """
    renamed, mapped = {}, 0
    for name, value in params.items():
        new = re.sub(r"^((moment[12]\.)?)(network\.)+", r"\1", name)
        mapped += new != name
        renamed[new] = value
    return renamed, mapped


@dataclass
class LoadReport:
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    optimizer_entries: int = 0
    renamed: int = 0

    def problems(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {self.missing[:8]}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {self.unexpected[:8]}")
        if self.mismatched:
            parts.append(f"shape mismatch {len(self.mismatched)}: {self.mismatched[:8]}")
        return "; ".join(parts)


def load_network_weights(network: ms.nn.Cell, path: str | Path, strict: bool = True) -> LoadReport:
    """Load a bare-network or training checkpoint (with moment1/moment2) into `network`.

    Optimizer moments and training counters are recognised and left out (the report counts them).
    Raises:
        CheckpointError: unreadable file, or (strict) any missing, unexpected or mis-shaped parameter.
    """
    params, renamed = rename_legacy_keys(load_param_dict(path))
    if renamed:
        logger.info("%s: mapped %d legacy parameter names", path, renamed)
    report = LoadReport(renamed=renamed)
    own = {p.name: p for p in network.get_parameters()}
    for name, value in params.items():
        if name.startswith(OPTIMIZER_PREFIXES) or name in TRAINING_STATE_KEYS:
            report.optimizer_entries += 1
        elif name not in own:
            report.unexpected.append(name)
        elif tuple(value.shape) != tuple(own[name].shape):
            report.mismatched.append(f"{name} {tuple(value.shape)} vs network {tuple(own[name].shape)}")
    report.missing = [n for n in own if n not in params]
    if strict and report.problems():
        raise CheckpointError(f"checkpoint {path} does not fit the network: {report.problems()}")
    usable = {n: v for n, v in params.items() if n in own and tuple(v.shape) == tuple(own[n].shape)}
    ms.load_param_into_net(network, usable, strict_load=False)
    report.loaded = len(usable)
    return report


def save_atomic(save_obj, path: str | Path, append_dict: dict | None = None, verify: bool = True) -> Path:
    """Write a checkpoint to a temporary file, check it reads back, then rename it into place.

    A failed write (disk full, say) raises with the path and leaves any previous file at `path` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.ckpt")  # save_checkpoint insists on the .ckpt suffix
    try:
        ms.save_checkpoint(save_obj, str(tmp), append_dict=append_dict)
        if verify:
            load_param_dict(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, (OSError, RuntimeError, ValueError)):
            raise CheckpointError(f"could not save checkpoint {path}: {err}") from err
        raise
    return path


def _checkpoint_order(path: Path) -> tuple:
    """Sort key: newest training position first (epoch, step from the `<prefix>-<epoch>_<step>.ckpt` name)."""
    match = re.search(r"-(\d+)_(\d+)\.ckpt$", path.name)
    return (int(match.group(1)), int(match.group(2)), path.stat().st_mtime) if match else (-1, -1, path.stat().st_mtime)


def find_resume_checkpoint(path: str | Path) -> tuple[Path, dict]:
    """A checkpoint file, or the newest readable `*-<epoch>_<step>.ckpt` in a directory, with its contents.

    Broken files in a directory are reported and skipped; a broken file named directly raises.
    Raises:
        CheckpointError: nothing usable.
    """
    path = Path(path)
    if path.is_file():
        return path, load_param_dict(path)
    if not path.is_dir():
        raise CheckpointError(f"--resume: no such checkpoint file or directory: {path}")
    candidates = sorted(
        (p for p in path.glob("*_*.ckpt") if not p.name.startswith(".")), key=_checkpoint_order, reverse=True
    )
    for candidate in candidates:
        try:
            return candidate, load_param_dict(candidate)
        except CheckpointError as err:
            logger.warning("skipping unusable checkpoint: %s", err)
    raise CheckpointError(f"--resume: no readable checkpoint in {path}")


def restore_training_state(train_cell, params: dict, path: Path) -> dict:
    """Load weights, Adam moments, step counters and LR into a TrainOneStep cell; return the loop position.

    Returns:
        {"epoch": epoch index, "step": batches done in that epoch, "global_step": steps done}.
    Raises:
        CheckpointError: the file lacks training state (weights-only files go to --pre_trained_model_path).
    """
    params, _ = rename_legacy_keys(params)
    own = {p.name: p for p in train_cell.get_parameters()}
    missing = [n for n in own if n not in params]
    if missing or "epoch_num" not in params:
        raise CheckpointError(
            f"{path} is not a training checkpoint of this configuration (missing {missing[:6]}"
            f"{' and the position' if 'epoch_num' not in params else ''}); use --pre_trained_model_path for weights"
        )
    mismatched = [n for n, p in own.items() if tuple(params[n].shape) != tuple(p.shape)]
    if mismatched:
        raise CheckpointError(f"{path} does not fit this configuration: shape mismatch in {mismatched[:6]}")
    ms.load_param_into_net(train_cell, {n: params[n] for n in own}, strict_load=True)
    position = {k: int(params[k].asnumpy().reshape(-1)[0]) for k in ("epoch_num", "step_num", "global_step_num")}
    return {"epoch": position["epoch_num"], "step": position["step_num"], "global_step": position["global_step_num"]}
