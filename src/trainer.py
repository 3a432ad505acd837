"""The training loop: data, network, optimizer, schedule, logging, checkpoints, validation, curves."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms
import numpy as np

from src import config as C
from src import shapes
from src.augment import build_augmenter
from src.callback import CheckpointSaver, ProgressLogger
from src.checkpoint import (
    best_checkpoint_wer,
    find_resume_checkpoint,
    load_network_weights,
    restore_training_state,
    try_save,
)
from src.curves import CurveLogger, truncate_after, try_plot_curves
from src.dataset import create_eval_dataset, training_dataset
from src.deepspeech2 import NetWithLossClass, build_network
from src.evaluation import EvalResult
from src.inference import evaluate_network
from src.lr_generator import get_lr
from src.runtime import release_runtime_memory
from src.text import load_labels
from src.train_step import BatchStep, TrainOneStep, build_optimizer, get_learning_rate, set_learning_rate

logger = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    steps: int = 0
    skipped_steps: int = 0
    last_loss: float = float("nan")
    lr_used: list[float] = field(default_factory=list)  # what the optimizer held at each step
    val: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, wer, cer)


def validation_section(d: C.TrainDataConfig) -> C.EvalDataConfig:
    """The evaluation data section for validation: the training run's manifest, features and batching, with
    eval.py's default long-clip cutting and batch cap."""
    return C.EvalDataConfig(
        test_manifest=d.val_manifest,
        batch_size=d.batch_size,
        batch_seconds=d.batch_seconds,
        labels_path=d.labels_path,
        num_workers=d.num_workers,
        skip_invalid=d.skip_invalid,
        SpectConfig=d.SpectConfig,
    )


def _validate(net, dataset, labels) -> EvalResult:
    """Greedy WER/CER of the network on a validation dataset (eval mode, then back to train mode)."""
    net.set_train(False)
    try:
        return evaluate_network(net, dataset, labels)
    finally:
        net.set_train(True)


class Trainer:
    """One training run, as named stages (icefall-style): build data, build the model, then epochs of steps.

    `run()` trains; `rank`/`world` shard the data for data parallelism.
    """

    def __init__(self, cfg: C.TrainConfig, pretrained: str = "", rank: int = 0, world: int = 1, make_reducer=None):
        self.cfg, self.rank, self.world = cfg, rank, world
        np.random.seed(cfg.TrainingConfig.seed)
        ms.set_seed(cfg.TrainingConfig.seed)
        self.labels = load_labels(cfg.DataConfig.labels_path)
        self._build_data()
        self._build_model(pretrained, make_reducer)
        self._build_outputs()
        self.global_step, self.start_epoch, self.start_pos = 0, 0, 0
        self.best_wer = float("inf")
        self.bad_in_row = 0
        self.stop_signal = ""

    # ------------------------------------------------------------------------------------------------ set-up
    def _build_data(self) -> None:
        """Training data (sharded by rank, augmented as configured) and, on rank 0, the whole validation set."""
        d, seed = self.cfg.DataConfig, self.cfg.TrainingConfig.seed
        augmenter = build_augmenter(d.AugmentationConfig, d.SpectConfig.sample_rate)
        logger.info("%s", augmenter.describe())
        self.data = training_dataset(d, self.labels, seed, self.rank, self.world, augmenter)
        self.val_data = None
        if d.val_manifest and self.rank == 0:  # validation runs on rank 0 only, over the whole validation set
            self.val_data = create_eval_dataset(validation_section(d), self.labels, seed=seed)
        self.steps_per_epoch = self.data.batches_per_epoch()

    def _build_model(self, pretrained: str, make_reducer) -> None:
        """Network (optionally pre-trained weights), Adam, the LR of every step and the compiled training step."""
        o, t = self.cfg.OptimConfig, self.cfg.TrainingConfig
        self.net = build_network(self.labels, self.cfg.DataConfig.SpectConfig, self.cfg.ModelConfig)
        if pretrained:
            report = load_network_weights(self.net, pretrained)
            logger.info(
                "loaded %d tensors from %s (%d optimizer entries left out)",
                report.loaded,
                pretrained,
                report.optimizer_entries,
            )
        self.optimizer = build_optimizer(self.net, o.learning_rate, o.betas, o.eps, o.weight_decay)
        self.lrs = get_lr(o.learning_rate, t.epochs, self.steps_per_epoch, o.learning_anneal, o.constant_epochs)
        loss_cell = NetWithLossClass(self.net, blank=len(self.labels) - 1)
        reducer = make_reducer(self.optimizer.parameters) if make_reducer else None
        self.step_cell = TrainOneStep(loss_cell, self.optimizer, o.loss_scale, o.max_norm, reducer)
        self.step_cell.set_train()
        stride = self.cfg.DataConfig.SpectConfig.window_stride
        self.batch_step = BatchStep(self.step_cell, t.micro_batch_seconds, stride)
        self.last_shape = None  # the previous batch's feature shape (see _release_memory_on_new_shape)

    def _build_outputs(self) -> None:
        """Checkpoint saver (rank 0 writes) and learning-curve logs (rank 0 only)."""
        k = self.cfg.CheckpointConfig
        self.saver = CheckpointSaver(
            k.ckpt_path,
            k.ckpt_file_name_prefix,
            k.keep_checkpoint_max,
            self.rank == 0,
            k.save_checkpoint_steps,
            k.save_checkpoint_seconds,
            k.background_save,
        )
        self.curves = CurveLogger(k.ckpt_path) if self.rank == 0 else None

    # ------------------------------------------------------------------------------------------------ state
    def best_path(self) -> Path:
        k = self.cfg.CheckpointConfig
        return Path(k.ckpt_path) / f"{k.ckpt_file_name_prefix}-best.ckpt"

    def resume(self, path: str, params: dict | None = None) -> Path:
        """Continue from a training checkpoint (a file, or the newest readable one in a directory).

        Weights, Adam moments, step counters, batch-norm statistics and the position in the epoch come back;
        batch order and augmentation are functions of (seed, epoch, clip), so the run goes on as if never stopped.
        The best validation WER comes back from the best checkpoint, so a worse epoch never replaces it.
        Args:
            params: the checkpoint's contents when the caller has already read them (train.py checks them first).
        """
        path, params = (Path(path), params) if params is not None else find_resume_checkpoint(path)
        position = restore_training_state(self.step_cell, params, path)
        best = best_checkpoint_wer(self.best_path())
        if best is not None:
            self.best_wer = best
            logger.info("best validation WER so far %.3f (%s)", best, self.best_path())
        self.global_step = position["global_step"]
        self.start_epoch, self.start_pos = position["epoch"], position["step"]
        if self.start_pos >= self.steps_per_epoch:
            self.start_epoch, self.start_pos = self.start_epoch + 1, 0
        if self.curves:
            truncate_after(self.cfg.CheckpointConfig.ckpt_path, self.global_step)
        logger.info(
            "resumed from %s: epoch %d, step %d (global step %d)",
            path,
            self.start_epoch + 1,
            self.start_pos,
            self.global_step,
        )
        return path

    def _on_signal(self, signum, frame) -> None:
        self.stop_signal = signal.Signals(signum).name
        logger.warning("%s received: finishing the current step, then saving a checkpoint", self.stop_signal)

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _end_epoch(self, epoch: int, pos: int, summary: TrainSummary) -> None:
        """Epoch-end checkpoint, then (rank 0) validation WER/CER, its curve row and the best checkpoint."""
        self.saver.save(self.step_cell, epoch, pos, self.global_step)
        if self.val_data is None:
            return
        result = _validate(self.net, self.val_data, self.labels)
        wer, cer = result.wer * 100, result.cer * 100
        summary.val.append((epoch, wer, cer))
        logger.info("epoch %d validation: WER %.3f CER %.3f (%d utterances)", epoch + 1, wer, cer, result.count)
        if self.curves:
            self.curves.log_eval(epoch + 1, self.global_step, wer, cer)
        if wer < self.best_wer:
            best = self.best_path()
            if try_save(self.step_cell, best, {"epoch_num": epoch, "val_wer": wer}, "best checkpoint"):
                self.best_wer = wer  # only once saved: a failed save leaves the file on disk as the bar to beat
                logger.info("new best validation WER %.3f: %s", wer, best)

    # ------------------------------------------------------------------------------------------------ the loop
    def run(self) -> TrainSummary:
        """Train from the current position to the end (epochs, max_steps or a stop signal); returns the summary."""
        t = self.cfg.TrainingConfig
        summary = TrainSummary()
        progress = ProgressLogger(self.steps_per_epoch, t.epochs, t.log_interval, self.rank == 0)
        previous_handlers = self._install_signal_handlers()
        self.saver.restart_clock(self.global_step)
        try:
            for epoch in range(self.start_epoch, t.epochs):
                if not self._train_epoch(epoch, summary, progress):
                    break
        finally:
            self._close(previous_handlers, progress, summary)
        self._report_end()
        return summary

    def _train_epoch(self, epoch: int, summary: TrainSummary, progress: ProgressLogger) -> bool:
        """One epoch (from the resume position in the first); False when training must stop after it."""
        start = self.start_pos if epoch == self.start_epoch else 0
        progress.start_epoch(epoch, start)
        epoch_started = time.time()
        pos = start - 1
        for pos, batch in self.data.iterate(epoch, start):
            self._train_step(epoch, pos, batch, summary, progress)
            if self.stop_signal or self._max_steps_reached():
                break
        if self.stop_signal:
            self.saver.save(self.step_cell, epoch, pos, self.global_step)
            logger.warning(
                "stopped by %s; resume with --resume %s", self.stop_signal, self.cfg.CheckpointConfig.ckpt_path
            )
            return False
        progress.end_epoch(time.time() - epoch_started, pos + 1 - start)
        self._end_epoch(epoch, pos, summary)
        return not self._max_steps_reached()

    def _train_step(self, epoch: int, pos: int, batch, summary: TrainSummary, progress: ProgressLogger) -> None:
        """One optimizer step, then its bookkeeping: summary, progress line, curve row, NaN guard, checkpoint."""
        started = time.time()
        loss, finite = self._one_step(batch)
        self.global_step += 1
        summary.lr_used.append(get_learning_rate(self.optimizer))
        summary.steps += 1
        summary.skipped_steps += not finite
        if finite:
            summary.last_loss = loss
        self._log_step(epoch, pos, batch, loss, finite, time.time() - started, summary.lr_used[-1], progress)
        self._guard_non_finite(finite, epoch, pos)
        if pos + 1 < self.steps_per_epoch and self.saver.due(self.global_step):
            self.saver.save_periodic(self.step_cell, epoch, pos, self.global_step)

    def _release_memory_on_new_shape(self, shape: tuple) -> None:
        """Hand MindSpore's cached runtime memory back when the batch shape changes.

        Each padded length runs its own compiled graph, and MindSpore keeps every graph's memory: without
        this, RSS grows by a whole step's footprint for every new length. Costs a re-allocation (seconds) on
        the next step, so the batches of one length run together (DataConfig.group_by_length).
        """
        if self.cfg.TrainingConfig.release_memory_on_new_shape and self.last_shape not in (None, shape):
            self.saver.wait()  # no checkpoint write in flight while the runtime frees memory
            release_runtime_memory()
        self.last_shape = shape

    def _one_step(self, batch) -> tuple[float, bool]:
        set_learning_rate(self.optimizer, float(self.lrs[min(self.global_step, len(self.lrs) - 1)]))
        arrays = batch.arrays()
        self._release_memory_on_new_shape(self.batch_step.pass_shape(arrays))
        loss, finite, _ = self.batch_step(arrays)
        return float(loss.asnumpy()), bool(finite.asnumpy())

    def _log_step(self, epoch, pos, batch, loss, finite, seconds, lr, progress: ProgressLogger) -> None:
        """The progress line (with seconds of audio per second) and, on rank 0, the curve row (mean output frames)."""
        lengths = batch.lengths[: batch.size]
        audio_s = shapes.frames_to_seconds(float(lengths.sum()), self.cfg.DataConfig.SpectConfig.window_stride)
        progress.step(epoch, pos, loss, finite, seconds, lr, audio_s)
        if self.curves:
            frames = float(np.mean(shapes.output_length(lengths)))
            self.curves.log_step(self.global_step, epoch + 1, loss, lr, frames=frames)

    def _guard_non_finite(self, finite: bool, epoch: int, pos: int) -> None:
        """Stop after TrainingConfig.max_bad_steps non-finite steps in a row (each was skipped, weights untouched)."""
        self.bad_in_row = 0 if finite else self.bad_in_row + 1
        if self.bad_in_row >= self.cfg.TrainingConfig.max_bad_steps:
            last = self.saver.written[-1] if self.saver.written else "none"
            raise FloatingPointError(
                f"{self.bad_in_row} non-finite steps in a row (last at epoch {epoch + 1} step {pos + 1}); "
                f"stopping. Last good checkpoint: {last}"
            )

    def _max_steps_reached(self) -> bool:
        max_steps = self.cfg.TrainingConfig.max_steps
        return bool(max_steps) and self.global_step >= max_steps

    def _close(self, previous_handlers: dict, progress: ProgressLogger, summary: TrainSummary) -> None:
        """Always, even on an error: finish a background checkpoint write, restore signal handlers, draw curves."""
        self.saver.close()  # a background write in flight is finished, never cut off
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        progress.close()
        if self.curves and summary.steps:
            try_plot_curves(self.cfg.CheckpointConfig.ckpt_path)

    def _report_end(self) -> None:
        """The distributed check (all ranks hold the same weights) and the clips that could not be read."""
        if self.world > 1:
            from src.distributed import max_weight_spread  # MindSpore's communication: only in distributed runs

            logger.info(
                "ranks agree: weight spread across %d ranks = %.3g", self.world, max_weight_spread(self.net, self.world)
            )
        if self.data.failed:
            logger.warning(
                "%d clips could not be read and were skipped: %s",
                sum(self.data.failed.values()),
                list(self.data.failed)[:5],
            )
