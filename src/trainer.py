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
from mindspore import Tensor

from src import config as C
from src.augment import Augmenter
from src.callback import CheckpointSaver, ProgressLogger
from src.checkpoint import (
    best_checkpoint_wer,
    find_resume_checkpoint,
    load_network_weights,
    restore_training_state,
    try_save,
)
from src.curves import CurveLogger, truncate_after, try_plot_curves
from src.dataset import create_dataset
from src.deepspeech2 import DeepSpeechModel, NetWithLossClass
from src.evaluation import EvalResult
from src.lr_generator import get_lr
from src.text import load_labels
from src.train_step import TrainOneStep, build_optimizer, get_learning_rate, set_learning_rate

logger = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    steps: int = 0
    skipped_steps: int = 0
    last_loss: float = float("nan")
    checkpoints: list[Path] = field(default_factory=list)
    lr_used: list[float] = field(default_factory=list)  # what the optimizer held at each step
    val: list[tuple[int, float, float]] = field(default_factory=list)  # (epoch, wer, cer)
    interrupted: str = ""  # the signal that stopped the run early, if any


def build_network(labels: list[str], spect: C.SpectConfig, model: C.ModelConfig, masked: bool = True):
    """The DeepSpeech2 network for a config."""
    return DeepSpeechModel(labels, model.hidden_size, model.hidden_layers, spect.sample_rate, spect.window_size, masked)


def build_augmenter(cfg: C.TrainConfig) -> Augmenter:
    a = cfg.DataConfig.AugmentationConfig
    return Augmenter(
        a.speed_volume_perturb,
        a.spec_augment,
        a.noise_dir,
        a.noise_prob,
        a.noise_min,
        a.noise_max,
        cfg.DataConfig.SpectConfig.sample_rate,
    )


def _validate(net, dataset, labels) -> EvalResult:
    """Greedy WER/CER of the network on a validation dataset (eval mode, then back to train mode)."""
    from src.inference import evaluate_network  # late: avoids a cycle with inference -> trainer.build_network

    net.set_train(False)
    try:
        return evaluate_network(net, dataset, labels)
    finally:
        net.set_train(True)


class Trainer:
    """Holds one training run's state. `run()` trains; `rank`/`world` shard the data for data parallelism."""

    def __init__(self, cfg: C.TrainConfig, pretrained: str = "", rank: int = 0, world: int = 1, make_reducer=None):
        self.cfg, self.rank, self.world = cfg, rank, world
        d, t = cfg.DataConfig, cfg.TrainingConfig
        np.random.seed(t.seed)
        ms.set_seed(t.seed)
        self.labels = load_labels(d.labels_path)
        augmenter = build_augmenter(cfg)
        logger.info("%s", augmenter.describe())
        common = dict(seed=t.seed, rank=rank, world=world, num_workers=d.num_workers, batch_seconds=d.batch_seconds)
        self.data = create_dataset(
            d.train_manifest,
            self.labels,
            d.SpectConfig,
            d.batch_size,
            True,
            d.max_duration,
            d.skip_invalid,
            augmenter=augmenter,
            sortagrad=d.sortagrad,
            group_by_length=d.group_by_length,
            **common,
        )
        self.val_data = None
        if d.val_manifest and rank == 0:  # validation runs on rank 0 only, over the whole validation set
            self.val_data = create_dataset(
                d.val_manifest,
                self.labels,
                d.SpectConfig,
                d.batch_size,
                False,
                0.0,
                d.skip_invalid,
                seed=t.seed,
                num_workers=d.num_workers,
                batch_seconds=d.batch_seconds,
                # validation batches and cuts long clips as eval.py does by default
                segment_seconds=C.EvalDataConfig.max_eval_seconds,
                max_batch_seconds=C.EvalDataConfig.max_batch_seconds,
            )
        self.net = build_network(self.labels, d.SpectConfig, cfg.ModelConfig)
        if pretrained:
            report = load_network_weights(self.net, pretrained)
            logger.info(
                "loaded %d tensors from %s (%d optimizer entries left out)",
                report.loaded,
                pretrained,
                report.optimizer_entries,
            )
        o = cfg.OptimConfig
        self.optimizer = build_optimizer(self.net, o.learning_rate, o.betas, o.eps, o.weight_decay)
        self.steps_per_epoch = self.data.batches_per_epoch()
        self.lrs = get_lr(o.learning_rate, t.epochs, self.steps_per_epoch, o.learning_anneal, o.constant_epochs)
        loss_cell = NetWithLossClass(self.net, blank=len(self.labels) - 1)
        reducer = make_reducer(self.optimizer.parameters) if make_reducer else None
        self.step_cell = TrainOneStep(loss_cell, self.optimizer, o.loss_scale, o.max_norm, reducer)
        self.step_cell.set_train()
        k = cfg.CheckpointConfig
        self.saver = CheckpointSaver(
            k.ckpt_path,
            k.ckpt_file_name_prefix,
            k.keep_checkpoint_max,
            rank == 0,
            k.save_checkpoint_steps,
            k.save_checkpoint_seconds,
            k.background_save,
        )
        self.curves = CurveLogger(k.ckpt_path) if rank == 0 else None
        self.global_step, self.start_epoch, self.start_pos = 0, 0, 0
        self.best_wer = float("inf")
        self.stop_signal = ""

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

    def _one_step(self, batch) -> tuple[float, bool]:
        set_learning_rate(self.optimizer, float(self.lrs[min(self.global_step, len(self.lrs) - 1)]))
        loss, finite, _ = self.step_cell(*(Tensor(a) for a in batch.arrays()))
        return float(loss.asnumpy()), bool(finite.asnumpy())

    def _end_epoch(self, epoch: int, pos: int, summary: TrainSummary) -> None:
        path = self.saver.save(self.step_cell, epoch, pos, self.global_step)
        if path:
            summary.checkpoints.append(path)
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

    def run(self) -> TrainSummary:
        t, k = self.cfg.TrainingConfig, self.cfg.CheckpointConfig
        summary = TrainSummary()
        progress = ProgressLogger(self.steps_per_epoch, t.epochs, t.log_interval, self.rank == 0)
        bad_in_row = 0
        hop_s = self.cfg.DataConfig.SpectConfig.window_stride
        previous_handlers = self._install_signal_handlers()
        self.saver.restart_clock(self.global_step)
        try:
            for epoch in range(self.start_epoch, t.epochs):
                start = self.start_pos if epoch == self.start_epoch else 0
                progress.start_epoch(epoch, start)
                epoch_started = time.time()
                pos = start - 1
                for pos, batch in self.data.iterate(epoch, start):
                    started = time.time()
                    loss, finite = self._one_step(batch)
                    summary.lr_used.append(get_learning_rate(self.optimizer))
                    self.global_step += 1
                    summary.steps += 1
                    bad_in_row = 0 if finite else bad_in_row + 1
                    summary.skipped_steps += not finite
                    if finite:
                        summary.last_loss = loss
                    audio_s = float(batch.lengths[: batch.size].sum()) * hop_s
                    progress.step(epoch, pos, loss, finite, time.time() - started, summary.lr_used[-1], audio_s)
                    if self.curves:
                        self.curves.log_step(self.global_step, epoch + 1, loss, summary.lr_used[-1])
                    if bad_in_row >= t.max_bad_steps:
                        last = self.saver.written[-1] if self.saver.written else "none"
                        raise FloatingPointError(
                            f"{bad_in_row} non-finite steps in a row (last at epoch {epoch + 1} step {pos + 1}); "
                            f"stopping. Last good checkpoint: {last}"
                        )
                    if pos + 1 < self.steps_per_epoch and self.saver.due(self.global_step):
                        self.saver.save_periodic(self.step_cell, epoch, pos, self.global_step)
                    if self.stop_signal:
                        break
                    if t.max_steps and self.global_step >= t.max_steps:
                        break
                if self.stop_signal:
                    summary.interrupted = self.stop_signal
                    path = self.saver.save(self.step_cell, epoch, pos, self.global_step)
                    summary.checkpoints += [path] if path else []
                    logger.warning("stopped by %s; resume with --resume %s", self.stop_signal, k.ckpt_path)
                    break
                progress.end_epoch(time.time() - epoch_started, pos + 1 - start)
                self._end_epoch(epoch, pos, summary)
                if t.max_steps and self.global_step >= t.max_steps:
                    break
        finally:
            self.saver.close()  # a background write in flight is finished, never cut off
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            progress.close()
            if self.curves and summary.steps:
                try_plot_curves(k.ckpt_path)
        if self.world > 1:
            from src.distributed import max_weight_spread

            logger.info(
                "ranks agree: weight spread across %d ranks = %.3g", self.world, max_weight_spread(self.net, self.world)
            )
        if self.data.failed:
            logger.warning(
                "%d clips could not be read and were skipped: %s",
                sum(self.data.failed.values()),
                list(self.data.failed)[:5],
            )
        return summary
