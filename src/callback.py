"""Training-loop helpers: the per-step progress line (plus a tqdm bar on a terminal) and checkpoint rotation."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from src.checkpoint import CheckpointError, save_atomic
from src.digest import remove_with_digest

logger = logging.getLogger(__name__)
LAB_LINE = {"lab_line": True}  # log records the handlers print bare, exactly as the lab's callbacks did


class ProgressLogger:
    """Logs epoch, step/steps, loss, running mean, step time, LR and audio seconds processed per second.

    Args:
        steps_per_epoch, epochs: for the step/steps and epoch/epochs fields.
        log_interval: steps between lines.
        enabled: False on ranks other than 0.
        window: steps in the running mean.
    """

    def __init__(self, steps_per_epoch: int, epochs: int, log_interval: int = 1, enabled: bool = True, window=50):
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.log_interval = max(1, log_interval)
        self.enabled = enabled
        self.recent: deque = deque(maxlen=window)
        self.skipped = 0
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=steps_per_epoch, unit="step", dynamic_ncols=True, leave=False)

    def start_epoch(self, epoch: int, start: int = 0) -> None:
        if self.bar is not None:
            self.bar.reset(total=self.steps_per_epoch)
            self.bar.update(start)
            self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")

    def step(self, epoch: int, pos: int, loss: float, finite: bool, seconds: float, lr: float, audio_s: float):
        """Record one step (pos is 0-based within the epoch); non-finite steps are counted, not averaged."""
        if finite:
            self.recent.append(loss)
        else:
            self.skipped += 1
        mean = sum(self.recent) / len(self.recent) if self.recent else float("nan")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}", avg=f"{mean:.3f}", lr=f"{lr:.2e}")
        if not self.enabled or ((pos + 1) % self.log_interval and pos + 1 != self.steps_per_epoch):
            return
        note = "" if finite else f" [non-finite, update skipped; {self.skipped} so far]"
        # The lab's LossMonitor line first (students grep `loss is`), then the richer progress on the same line.
        logger.info(
            "epoch: %d step: %d, loss is %s (epoch %d/%d step %d/%d avg %.4f time %.3fs lr %.3e audio %.1f s/s)%s",
            epoch + 1,
            pos + 1,
            loss,
            epoch + 1,
            self.epochs,
            pos + 1,
            self.steps_per_epoch,
            mean,
            seconds,
            lr,
            audio_s / max(seconds, 1e-9),
            note,
            extra=LAB_LINE,
        )

    def end_epoch(self, seconds: float, steps: int) -> None:
        """The lab's TimeMonitor line for an epoch that ran `steps` steps in `seconds`."""
        if self.enabled and steps > 0:
            ms_total = seconds * 1000.0
            logger.info("epoch time: %5.3f ms, per step time: %5.3f ms", ms_total, ms_total / steps, extra=LAB_LINE)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def snapshot_parameters(cell) -> list[dict]:
    """A private copy of every parameter of `cell` (weights, Adam moments, counters), for a background write.

    `Parameter.asnumpy()` shares memory with the live parameter on CPU, so each array is copied: the training step
    may then update the parameters while the copy is being written.
    """
    from mindspore import Tensor

    return [{"name": p.name, "data": Tensor.from_numpy(p.asnumpy().copy())} for p in cell.get_parameters()]


WRITER_NICENESS = 10  # added to the writer thread's nice value: it yields the CPU to training, the write waits


def _lower_thread_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: each thread has its own nice value); best effort."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WRITER_NICENESS))
    except (AttributeError, OSError) as err:  # not Linux, or not permitted: the write still happens
        logger.debug("checkpoint writer keeps its priority: %s", err)


class CheckpointSaver:
    """Writes `<prefix>-<epoch>_<step>.ckpt` and its `.sha256` atomically, keeps the newest `keep_max`, says when due.

    A periodic checkpoint is due every `every_steps` steps or every `every_seconds` seconds, whichever comes first
    (0 turns a trigger off). `save_in_background` copies the parameters in the training thread (a memory copy) and
    writes, verifies and renames the file in one background thread, so the step loop does not wait for the disk;
    while a write is still running a due save waits for a later step (never two writes or two snapshots at once).
    `save` writes in the calling thread after any background write has finished (epoch end, stop signal).

    Args:
        directory: the run directory (CheckpointConfig.ckpt_path).
        prefix: CheckpointConfig.ckpt_file_name_prefix.
        keep_max: CheckpointConfig.keep_checkpoint_max.
        enabled: False on ranks other than 0 (only rank 0 writes).
        every_steps, every_seconds: CheckpointConfig.save_checkpoint_steps / save_checkpoint_seconds.
        background: CheckpointConfig.background_save: periodic checkpoints by the writer thread (else blocking).
    """

    def __init__(
        self,
        directory: str | Path,
        prefix: str,
        keep_max: int,
        enabled: bool = True,
        every_steps: int = 0,
        every_seconds: float = 0.0,
        background: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.keep_max = keep_max
        self.enabled = enabled
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.background = background
        self.failures = 0
        self.written: list[Path] = sorted(self.directory.glob(f"{prefix}-*_*.ckpt"), key=lambda p: p.stat().st_mtime)
        self._lock = threading.Lock()  # guards `written`/`failures` between the writer thread and the loop
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.restart_clock(0)

    def restart_clock(self, global_step: int) -> None:
        """Count steps and seconds to the next periodic checkpoint from now (run start, resume)."""
        self._last_step, self._last_time = global_step, time.monotonic()

    def due(self, global_step: int) -> bool:
        """True when `every_steps` steps or `every_seconds` seconds have passed since the last save began."""
        if not self.enabled:
            return False
        if self.every_steps and global_step - self._last_step >= self.every_steps:
            return True
        return self.every_seconds > 0 and time.monotonic() - self._last_time >= self.every_seconds

    def busy(self) -> bool:
        """A background write is still running."""
        return self._pending is not None and not self._pending.done()

    def save_periodic(self, cell, epoch: int, pos: int, global_step: int) -> None:
        """The periodic checkpoint, by the writer thread or (background=False) in this thread."""
        if self.background:
            self.save_in_background(cell, epoch, pos, global_step)
        else:
            self.save(cell, epoch, pos, global_step)

    def save_in_background(self, cell, epoch: int, pos: int, global_step: int) -> bool:
        """Snapshot `cell` now and write it in the background; False (nothing done) while a write is running."""
        if not self.enabled or self.busy():
            return False
        self.wait()  # collect the finished write (re-raises a bug in it, if any)
        started = time.time()
        snapshot = snapshot_parameters(cell)
        path, state = self._target(epoch, pos, global_step)
        self.restart_clock(global_step)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                1, thread_name_prefix="checkpoint-writer", initializer=_lower_thread_priority
            )
        self._pending = self._executor.submit(self._write, snapshot, path, state, started)
        logger.debug("checkpoint snapshot for %s took %.3fs", path.name, time.time() - started)
        return True

    def save(self, cell, epoch: int, pos: int, global_step: int, extra: dict | None = None) -> Path | None:
        """Save after step `pos` (0-based) of `epoch` in this thread; the file records where training stands."""
        if not self.enabled:
            return None
        self.wait()
        path, state = self._target(epoch, pos, global_step, extra)
        self.restart_clock(global_step)
        return self._write(cell, path, state, time.time())

    def wait(self) -> Path | None:
        """Block until the background write (if any) has finished; returns its path (None if it failed)."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def close(self) -> None:
        """Finish the background write and stop the writer thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def _target(self, epoch: int, pos: int, global_step: int, extra: dict | None = None) -> tuple[Path, dict]:
        path = self.directory / f"{self.prefix}-{epoch + 1}_{pos + 1}.ckpt"
        state = {"epoch_num": epoch, "step_num": pos + 1, "global_step_num": global_step}
        state.update(extra or {})
        return path, state

    def _write(self, save_obj, path: Path, state: dict, started: float) -> Path | None:
        """Write atomically, then rotate; a failed save (disk full, say) is logged and the old files are kept."""
        try:
            save_atomic(save_obj, path, append_dict=state)
        except CheckpointError as err:
            with self._lock:
                self.failures += 1
                failures = self.failures
            logger.error("%s (previous checkpoints kept; %d failed saves so far)", err, failures)
            return None
        with self._lock:
            if path in self.written:
                self.written.remove(path)
            self.written.append(path)
            while len(self.written) > self.keep_max:
                remove_with_digest(self.written.pop(0))  # the checkpoint and its sha256 sidecar
        logger.info("saved checkpoint %s (%.1fs)", path, time.time() - started)
        return path
