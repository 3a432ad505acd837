"""Training-loop helpers: the per-step progress line (plus a tqdm bar on a terminal) and checkpoint rotation."""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from pathlib import Path

from src.checkpoint import CheckpointError, save_atomic

logger = logging.getLogger(__name__)


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
        logger.info(
            "epoch %d/%d step %d/%d loss %.4f avg %.4f time %.3fs lr %.3e audio %.1f s/s%s",
            epoch + 1,
            self.epochs,
            pos + 1,
            self.steps_per_epoch,
            loss,
            mean,
            seconds,
            lr,
            audio_s / max(seconds, 1e-9),
            note,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class CheckpointSaver:
    """Writes `<prefix>-<epoch>_<step>.ckpt` atomically and keeps the newest `keep_max` of them.

    Args:
        directory: the run directory (CheckpointConfig.ckpt_path).
        prefix: CheckpointConfig.ckpt_file_name_prefix.
        keep_max: CheckpointConfig.keep_checkpoint_max.
        enabled: False on ranks other than 0 (only rank 0 writes).
    """

    def __init__(self, directory: str | Path, prefix: str, keep_max: int, enabled: bool = True) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.keep_max = keep_max
        self.enabled = enabled
        self.failures = 0
        self.written: list[Path] = sorted(self.directory.glob(f"{prefix}-*_*.ckpt"), key=lambda p: p.stat().st_mtime)

    def save(self, cell, epoch: int, pos: int, global_step: int, extra: dict | None = None) -> Path | None:
        """Save after step `pos` (0-based) of `epoch`; the file records where training stands."""
        if not self.enabled:
            return None
        path = self.directory / f"{self.prefix}-{epoch + 1}_{pos + 1}.ckpt"
        state = {"epoch_num": epoch, "step_num": pos + 1, "global_step_num": global_step}
        state.update(extra or {})
        started = time.time()
        try:
            save_atomic(cell, path, append_dict=state)
        except CheckpointError as err:  # e.g. disk full: keep training, keep the previous checkpoints
            self.failures += 1
            logger.error("%s (previous checkpoints kept; %d failed saves so far)", err, self.failures)
            return None
        if path in self.written:
            self.written.remove(path)
        self.written.append(path)
        while len(self.written) > self.keep_max:
            self.written.pop(0).unlink(missing_ok=True)
        logger.info("saved checkpoint %s (%.1fs)", path, time.time() - started)
        return path
