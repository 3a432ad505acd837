"""A run directory belongs to one training run: a lock while it trains, and no silent take-over of another run.

`claim_run_dir` is called after every input has been validated and before anything is written there:
- a second process training into the same directory is refused, naming the lock holder's pid
  (`fcntl.flock` on `<dir>/.train.lock`: the kernel drops the lock when the process dies, even by SIGKILL);
- a new run (no --resume) into a directory that holds another run's checkpoints is refused, unless --overwrite,
  which removes that run's checkpoints and curves first (its config.json is replaced by the new run's).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from src.atomic import stale_temps
from src.digest import remove_with_digest

logger = logging.getLogger(__name__)

LOCK_NAME = ".train.lock"
# Files a training run writes; --overwrite removes the checkpoints and curves of the previous run.
RUN_FILES = ("train_curve.csv", "val_curve.csv", "curves.png")


class RunDirError(ValueError):
    """The run directory is in use or holds another run; the message says what to do."""


class RunLock:
    """An exclusive flock on `<run_dir>/.train.lock` holding this process's pid; use as a context manager."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"run directory {self.path.parent} is in use by another training run (pid {holder}); "
                "wait for it to finish or choose another --save_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def existing_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoint files already in a run directory (hidden temporaries left out)."""
    directory = Path(run_dir)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.ckpt") if not p.name.startswith("."))


def check_ownership(run_dir: str | Path, resume: bool, overwrite: bool) -> list[Path]:
    """Refuse a new run into a directory holding another run's checkpoints (read-only; nothing is written).

    Returns:
        the checkpoints --overwrite will remove (empty when there is nothing to take over).
    Raises:
        RunDirError: the directory holds checkpoints and neither --resume nor --overwrite was given.
    """
    found = existing_checkpoints(run_dir)
    if not found or resume:
        return []
    if not overwrite:
        raise RunDirError(
            f"run directory {run_dir} already holds {len(found)} checkpoint(s) of another run (e.g. {found[-1].name}); "
            f"use --resume {run_dir} to continue that run, --overwrite to replace it, or another --save_dir"
        )
    return found


def clear_previous_run(run_dir: str | Path, checkpoints: list[Path]) -> None:
    """--overwrite: remove the previous run's checkpoints and curves (called with the lock held)."""
    directory = Path(run_dir)
    doomed = checkpoints + [directory / name for name in RUN_FILES if (directory / name).is_file()]
    for path in doomed:
        remove_with_digest(path)  # a checkpoint goes with its sha256 sidecar
    if doomed:
        logger.warning("--overwrite: removed %d files of the previous run in %s", len(doomed), directory)


def claim_run_dir(run_dir: str | Path, resume: bool, overwrite: bool) -> RunLock:
    """Lock the run directory for this process and check it is ours to write (see the module docstring).

    Returns:
        the held RunLock (release it, or use it as a context manager).
    """
    lock = RunLock(run_dir).acquire()  # first: a live run is named by its pid, whatever else the directory holds
    try:
        for stale in stale_temps(run_dir):  # a save cut short by SIGKILL or a power cut
            stale.unlink(missing_ok=True)
            logger.warning("removed %s, left by an interrupted save", stale)
        doomed = check_ownership(run_dir, resume, overwrite)
        if doomed:  # only --overwrite of another run's checkpoints clears anything; a resume keeps its curves
            clear_previous_run(run_dir, doomed)
    except BaseException:
        lock.release()
        raise
    return lock
