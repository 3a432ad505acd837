"""Atomic, guarded file writes: the one way this project saves a file.

Content goes to a hidden temporary sibling (`.<name>.<pid>.tmp[<suffix>]`, same directory so the rename never
crosses a filesystem), is fsynced, then renamed over the target with `os.replace`. Readers see the old file or
the new one, never half of one. Any failure (disk full, read-only directory, a bug in the writer) removes the
temporary file and reports the target path with the reason; a previous file at the target is left untouched.

- `atomic_write(path, produce)` raises `AtomicWriteError` (an OSError) naming the path.
- `try_atomic_write(path, produce, what)` logs the failure and returns False: for saves that must never stop
  a run (checkpoints during training, curves, evaluation results).
- `write_text` / `write_bytes` and their `try_` forms cover the common cases.

A `verify(tmp)` callback may check the written file before it replaces the target. Raising `CorruptWrite` means
the content is proven bad (the temp is removed and the save fails); any other exception means it could not be
checked (out of memory, say): that is logged and the file is kept, because a checker that fails to read a file
proves nothing about it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

TMP_MARK = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]+)?$")


class AtomicWriteError(OSError):
    """A file could not be written; the message names the target path and the reason."""


class CorruptWrite(ValueError):
    """Raised by a verify callback when the written file is proven bad (not merely unreadable)."""


def temp_path(path: str | Path, keep_suffix: bool = False) -> Path:
    """The hidden temporary sibling used while writing `path` (ends in `.tmp`, or `.tmp<suffix>` if asked).

    keep_suffix is for writers that pick the format from the name (MindSpore's .ckpt, matplotlib, sox).
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}{path.suffix if keep_suffix else ''}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; some filesystems refuse to fsync a directory, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f" ({err.filename})" if err.filename else "")
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _remove(paths: Iterable[Path]) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError as err:  # cannot even delete: say so, the caller's error already names the target
            logger.warning("could not remove temporary file %s: %s", p, _reason(err))


def atomic_write(
    path: str | Path,
    produce: Callable[[Path], object],
    *,
    verify: Callable[[Path], object] | None = None,
    keep_suffix: bool = False,
    durable: bool = True,
    leftovers: Callable[[Path], Iterable[Path]] | None = None,
    before_replace: Callable[[Path], object] | None = None,
) -> Path:
    """Write `path` atomically: `produce(tmp)` writes the temporary file, which then replaces `path`.

    Args:
        produce: writes the whole content to the path it is given.
        verify: optional check of the temporary file (raise CorruptWrite when the content is proven bad).
        keep_suffix: the temporary name ends with the target's suffix.
        durable: fsync the file and the directory (off only for bulk files that a rerun regenerates).
        leftovers: other files `produce` may leave beside tmp on failure (e.g. a library's own temp name).
        before_replace: called with tmp after the check, just before the rename (stage a companion file, say);
            any exception it raises fails the write like one from `produce`.
    Returns:
        `path`.
    Raises:
        AtomicWriteError: naming `path` and the reason; nothing partial is left behind.
    """
    path = Path(path)
    tmp = temp_path(path, keep_suffix)
    extra = list(leftovers(tmp)) if leftovers else []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        produce(tmp)
        if not tmp.is_file():
            raise FileNotFoundError(f"the writer produced no file at {tmp}")
        if durable:
            _fsync_file(tmp)
        if verify is not None:
            _checked(verify, tmp, path)
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        _remove([tmp, *extra])
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        raise AtomicWriteError(f"could not write {path}: {_reason(err)}") from err
    if durable:
        _fsync_dir(path.parent)
    return path


def _checked(verify: Callable[[Path], object], tmp: Path, path: Path) -> None:
    """Run `verify`; CorruptWrite propagates, an inability to check is logged and the file kept."""
    try:
        verify(tmp)
    except CorruptWrite:
        raise
    except Exception as err:  # noqa: BLE001 - failing to read back is not evidence of a bad file
        logger.warning("could not read back %s to check it (%s); keeping it", path, _reason(err))


def try_atomic_write(path: str | Path, produce: Callable[[Path], object], what: str = "file", **kwargs) -> bool:
    """`atomic_write`, but a failure is logged (`what`, path and reason) and returns False instead of raising."""
    try:
        atomic_write(path, produce, **kwargs)
    except AtomicWriteError as err:
        logger.error("%s not saved: %s", what, err)
        return False
    return True


def write_text(path: str | Path, text: str, encoding: str = "utf-8", durable: bool = True) -> Path:
    """Atomically replace `path` with `text`."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding), durable=durable)


def write_bytes(path: str | Path, data: bytes, durable: bool = True) -> Path:
    """Atomically replace `path` with `data`."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), durable=durable)


def try_write_text(path: str | Path, text: str, what: str = "file", encoding: str = "utf-8") -> bool:
    """`write_text` that logs a failure and returns False."""
    return try_atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding), what)


def stale_temps(directory: str | Path) -> list[Path]:
    """Temporary files in `directory` left by writers that were killed (their process is gone)."""
    found = []
    for p in sorted(Path(directory).glob(f".*{TMP_MARK}*")):
        match = _TEMP_NAME.search(p.name)  # also MindSpore's own `<tmp without .ckpt>.tmp` from a killed save
        if match and not _alive(int(match.group(1))):
            found.append(p)
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
