"""Checkpoint I/O: atomic verified saves, clear errors for broken files, explicit key mapping and reports."""

from __future__ import annotations

import logging
import math
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


# Bytes per element of the tensor types a checkpoint holds; other types are parsed but not size-checked.
_ITEM_BYTES = {"Float32": 4, "Float16": 2, "BFloat16": 2, "Float64": 8, "Int64": 8, "Int32": 4, "Int16": 2,
               "Int8": 1, "UInt8": 1, "Bool": 1}  # fmt: skip
_CRC_TRAILER = b"crc_num"  # MindSpore's crc_check=True appends b"crc_num" + a 10-byte number


def _read_varint(f) -> int | None:
    """One protobuf varint from a binary file; None at a clean end of file."""
    result, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            if shift:
                raise CheckpointError("ends inside a length field")
            return None
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
        shift += 7
        if shift > 63:
            raise CheckpointError("has a malformed length field")


def verify_checkpoint_file(path: str | Path) -> int:
    """Check that a .ckpt file parses completely, reading one tensor at a time (never the whole file).

    A MindSpore checkpoint is a protobuf `Checkpoint` whose entries (field 1) each hold a name and a tensor; every
    entry is read, parsed and its byte count compared with its shape, so a truncated or garbled file is caught while
    memory stays at the size of the largest tensor (about 21 MB for the full model).
    Returns:
        the number of entries.
    Raises:
        CheckpointError: naming the file and the first problem.
    """
    from google.protobuf.message import DecodeError
    from mindspore.train.checkpoint_pb2 import Checkpoint  # MindSpore's own schema for the entries

    path = Path(path)
    size, count = path.stat().st_size, 0
    try:
        with open(path, "rb") as f:
            while True:
                at = f.tell()
                if size - at == len(_CRC_TRAILER) + 10 and f.read(len(_CRC_TRAILER)) == _CRC_TRAILER:
                    break
                f.seek(at)
                key = _read_varint(f)
                if key is None:
                    break
                if key != 0x0A:  # field 1, length-delimited
                    raise CheckpointError(f"has an unexpected field at byte {at}")
                length = _read_varint(f)
                if length is None or f.tell() + length > size:
                    raise CheckpointError(f"is truncated: entry {count} at byte {at} runs past the end")
                entry = Checkpoint.Value.FromString(f.read(length))
                _check_entry(entry)
                count += 1
    except CheckpointError as err:
        raise CheckpointError(f"checkpoint {path} {err}") from None
    except (DecodeError, ValueError, OSError) as err:  # the bytes are not a checkpoint entry
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {type(err).__name__}: {err}") from None
    if count == 0:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    return count


def _check_entry(entry) -> None:
    """An entry's tensor must have exactly the bytes its shape and type say."""
    item = _ITEM_BYTES.get(entry.tensor.tensor_type)
    if not entry.tag or item is None:
        return
    expected = math.prod(entry.tensor.dims) * item
    if len(entry.tensor.tensor_content) != expected:
        raise CheckpointError(
            f"is corrupt: {entry.tag} holds {len(entry.tensor.tensor_content)} bytes, its shape needs {expected}"
        )


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
            verify_checkpoint_file(tmp)  # streamed: never the whole file in memory
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
