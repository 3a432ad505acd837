"""Checkpoint I/O: atomic verified saves with a sha256 sidecar, clear errors for broken files, key mapping, reports.

Checkpoints are plain MindSpore protobufs (no `crc_check` trailer), so the official model zoo and older MindSpore
versions read them; their integrity check lives beside them in `NAME.ckpt.sha256` (see src/digest.py). Files
written earlier with MindSpore's CRC trailer still load, their CRC checked.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms

from src.atomic import AtomicWriteError, CorruptWrite, atomic_write, write_text
from src.digest import DigestMismatch, check_digest, digest_line, digest_path, sha256_file

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


# Legacy files (save_checkpoint(crc_check=True)) end with b"crc_num" + a 10-byte big-endian CRC32.
CRC_TRAILER = b"crc_num"
CRC_TRAILER_SIZE = len(CRC_TRAILER) + 10


def has_crc(path: str | Path) -> bool:
    """True when the file ends with MindSpore's CRC trailer (written by save_checkpoint(crc_check=True))."""
    path = Path(path)
    size = path.stat().st_size
    if size < CRC_TRAILER_SIZE:
        return False
    with open(path, "rb") as f:
        f.seek(size - CRC_TRAILER_SIZE)
        return f.read(len(CRC_TRAILER)) == CRC_TRAILER


def verify_crc(path: str | Path, chunk: int = 1 << 20) -> None:
    """Check a legacy checkpoint against its CRC trailer, streaming (memory use is one chunk, whatever the file size).

    Raises:
        CorruptWrite: no trailer (cut short) or the CRC differs: the file is proven bad.
        OSError: the file could not be read (proves nothing about its content).
    """
    path = Path(path)
    size = path.stat().st_size
    if not has_crc(path):
        raise CorruptWrite(f"{path} has no CRC trailer (cut short?)")
    crc, remaining = 0, size - CRC_TRAILER_SIZE
    with open(path, "rb") as f:
        while remaining:
            block = f.read(min(chunk, remaining))
            if not block:
                raise CorruptWrite(f"{path} ended early")
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
        stored = int.from_bytes(f.read(CRC_TRAILER_SIZE)[len(CRC_TRAILER) :], "big")
    if crc != stored:
        raise CorruptWrite(f"{path} fails its CRC check (stored {stored:#010x}, computed {crc:#010x})")


def _integrity(path: Path) -> str:
    """Check `path` (streamed): against its sha256 sidecar, else its legacy CRC trailer. Returns what was checked.

    Returns:
        "sha256", "crc" or "none" (a model-zoo or older checkpoint: nothing to check against).
    Raises:
        CheckpointError: the content is proven damaged, or the file or its sidecar cannot be read; names the file.
    """
    try:
        if check_digest(path):
            return "sha256"
        if has_crc(path):
            verify_crc(path)
            return "crc"
    except (DigestMismatch, CorruptWrite) as err:
        raise CheckpointError(f"checkpoint {path} is damaged: {err}; it cannot be used") from None
    except OSError as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from None
    return "none"


def _check_file(path: str | Path) -> tuple[Path, str]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" + (" (it is a directory)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {path}")
    return path, _integrity(path)


def check_readable(path: str | Path) -> Path:
    """A checkpoint file exists, is not empty and matches its sha256 sidecar or CRC (streamed, nothing loaded).

    Raises:
        CheckpointError: naming the file.
    """
    return _check_file(path)[0]


def load_param_dict(path: str | Path) -> dict:
    """Read a .ckpt into {name: Parameter} after checking its sha256 sidecar (or legacy CRC) when it has one.

    Checkpoints with neither (the model zoo's, older runs') load as before, without an integrity check.
    Raises:
        CheckpointError: missing, empty, truncated, corrupt or bit-flipped (digest or CRC mismatch) file, or not
            enough memory to read it; the message names the file and says which.
    """
    path, checked = _check_file(path)  # streamed check first: a damaged file is named before MindSpore reads it all
    try:
        params = ms.load_checkpoint(str(path), crc_check=checked == "crc")
    except MemoryError:
        raise CheckpointError(f"checkpoint {path} could not be read: not enough memory") from None
    except (ValueError, RuntimeError, TypeError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "available memory" in first or "not enough memory" in first:
            raise CheckpointError(f"checkpoint {path} could not be read: not enough free memory ({first})") from None
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {first}") from None
    if not params:
        raise CheckpointError(f"checkpoint {path} holds no parameters")
    if checked == "none":
        logger.info("%s has no sha256 digest (older or model-zoo checkpoint): loaded without an integrity check", path)
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


def _mindspore_temp(tmp: Path) -> list[Path]:
    """save_checkpoint writes `<name without .ckpt>.tmp` first and renames it; a failure can leave that file."""
    return [tmp.with_suffix(".tmp")]


def _varint(f) -> int:
    """One protobuf varint from the stream; CorruptWrite when the file ends inside it."""
    value, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            raise CorruptWrite("it ends inside a field header (cut short?)")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise CorruptWrite("it holds an impossible field header (not a checkpoint protobuf)")


def _entry_name(head: bytes) -> str | None:
    """The `tag` (field 1) of a Checkpoint.Value from its first bytes, or None when it is not there."""
    if len(head) < 2 or head[0] != 0x0A:
        return None
    length, shift, i = 0, 0, 1
    while i < len(head) and head[i] & 0x80:
        length |= (head[i] & 0x7F) << shift
        shift, i = shift + 7, i + 1
    if i >= len(head):
        return None
    length |= head[i] << shift
    name = head[i + 1 : i + 1 + length]
    return name.decode("utf-8", errors="replace") if len(name) == length else None


def check_structure(path: str | Path, expected: set[str] | None = None) -> set[str]:
    """Walk a plain checkpoint's protobuf fields without reading the tensors (seeks; memory is a few KiB).

    Proves the file is whole: every field ends inside the file, the last one exactly at its end, and (given
    `expected`) every parameter name written is there. Returns the names found.
    Raises:
        CorruptWrite: the file is cut short, is not a checkpoint protobuf, or lacks expected parameters.
        OSError: the file could not be read (proves nothing about its content).
    """
    path = Path(path)
    size, names = path.stat().st_size, set()
    with open(path, "rb") as f:
        try:
            while f.tell() < size:
                key = _varint(f)
                wire, field_number = key & 7, key >> 3
                if wire == 0:
                    _varint(f)
                    continue
                if wire not in (1, 2, 5) or field_number == 0:
                    raise CorruptWrite(f"it holds a field of wire type {wire} (not a checkpoint protobuf)")
                length = {1: 8, 5: 4}.get(wire) or _varint(f)
                end = f.tell() + length
                if end > size:
                    raise CorruptWrite(f"a field runs {end - size} bytes past its end (cut short?)")
                if wire == 2 and field_number == 1:
                    name = _entry_name(f.read(min(length, 4096)))
                    if name is not None:
                        names.add(name)
                f.seek(end)
        except CorruptWrite as err:
            raise CorruptWrite(f"{path} is damaged: {err}") from None
    if size == 0:
        raise CorruptWrite(f"{path} is empty")
    missing = sorted((expected or set()) - names)
    if missing:
        raise CorruptWrite(f"{path} lacks {len(missing)} saved entries (cut short?): {missing[:4]}")
    return names


def _expected_names(save_obj, append_dict: dict | None) -> set[str] | None:
    """Names save_checkpoint writes for `save_obj` (a Cell, a list of {"name", "data"}, or a dict), or None."""
    if isinstance(save_obj, dict):
        names = set(save_obj)
    elif isinstance(save_obj, list):
        names = {e["name"] for e in save_obj if isinstance(e, dict) and "name" in e}
    elif isinstance(save_obj, ms.nn.Cell):
        names = {
            p.name
            for _, p in save_obj.parameters_and_names()
            if not getattr(p, "cache_enable", False) and not p.param_info.is_pipeline_shared_param
        }
    else:
        return None
    return names | set(append_dict or {})


def save_atomic(save_obj, path: str | Path, append_dict: dict | None = None, verify: bool = True) -> Path:
    """Write a plain checkpoint through src.atomic (temp file, streamed structure check, fsync, rename), then its
    sha256 sidecar `path.sha256` (hashed from the temp file in 1 MiB chunks, written atomically).

    Only a file proven bad (cut short) is discarded; one that merely cannot be read back is kept, without a
    sidecar (logged). The previous sidecar is removed just before the rename, so a stale digest never sits beside
    the new file, whatever happens next.
    Raises:
        CheckpointError: the save failed (disk full, say); the path and the reason are named, no partial file is
            left and any previous file at `path` (with its sidecar) is intact.
    """
    path = Path(path)
    expected = _expected_names(save_obj, append_dict) if verify else None
    digest: dict[str, str] = {}

    def produce(tmp: Path) -> None:
        ms.save_checkpoint(save_obj, str(tmp), append_dict=append_dict)

    def check(tmp: Path) -> None:
        if verify:
            check_structure(tmp, expected)
        digest["sha256"] = sha256_file(tmp)

    try:
        atomic_write(
            path,
            produce,
            verify=check,
            keep_suffix=True,
            leftovers=_mindspore_temp,
            before_replace=lambda tmp: digest_path(path).unlink(missing_ok=True),
        )
    except AtomicWriteError as err:
        raise CheckpointError(str(err)) from err  # "could not write <path>: <reason>"
    if "sha256" not in digest:
        logger.warning("%s saved without a sha256 digest (it could not be read back): it loads unchecked", path)
        return path
    try:
        write_text(digest_path(path), digest_line(digest["sha256"], path))
    except AtomicWriteError as err:
        logger.error("%s saved, but not its digest (%s): it loads without an integrity check", path, err)
    return path


def try_save(save_obj, path: str | Path, append_dict: dict | None = None, what: str = "checkpoint") -> Path | None:
    """`save_atomic` that logs a failure (path and reason) and returns None: training goes on."""
    try:
        return save_atomic(save_obj, path, append_dict)
    except CheckpointError as err:
        logger.error("%s not saved: %s", what, err)
        return None


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


def require_training_state(path: str | Path, params: dict) -> None:
    """Raise CheckpointError (saying what to do) unless the checkpoint records where training stood."""
    if "step_num" not in params or "epoch_num" not in params:
        raise CheckpointError(
            f"--resume: {path} holds no training position (step_num): it is a best or weights-only checkpoint. "
            f"To train on from its weights, start a new run with --pre_trained_model_path {path}"
        )


def best_checkpoint_wer(path: str | Path) -> float | None:
    """The validation WER stored in a best checkpoint (`val_wer`), or None when there is no usable file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        params = load_param_dict(path)
    except CheckpointError as err:
        logger.warning("best validation WER unknown: %s", err)
        return None
    if "val_wer" not in params:
        return None
    return float(params["val_wer"].asnumpy().reshape(-1)[0])


def restore_training_state(train_cell, params: dict, path: Path) -> dict:
    """Load weights, Adam moments, step counters and LR into a TrainOneStep cell; return the loop position.

    Returns:
        {"epoch": epoch index, "step": batches done in that epoch, "global_step": steps done}.
    Raises:
        CheckpointError: the file lacks training state (weights-only files go to --pre_trained_model_path).
    """
    require_training_state(path, params)
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
