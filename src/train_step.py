"""One compiled training step: scaled CTC loss -> unscaled grads -> (all-reduce) -> clip -> Adam, NaN-safe.

Upstream handed loss_scale=1024 to Adam without scaling the loss, so gradients reached Adam 1024x too small
and eps acted 1024x too large. Here the loss really is scaled (through the backward's sensitivity) and the
gradients are divided back before clipping, so Adam sees true gradients and the configured eps.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from src.shapes import frames_to_seconds

_scale = ops.MultitypeFuncGraph("scale")
_square_sum = ops.MultitypeFuncGraph("square_sum")
_accumulate = ops.MultitypeFuncGraph("accumulate")
_zero = ops.MultitypeFuncGraph("zero")


@_scale.register("Tensor", "Tensor")
def _scale_tensor(factor: Tensor, grad: Tensor) -> Tensor:
    return grad * factor.astype(grad.dtype)


@_accumulate.register("Tensor", "Tensor")
def _accumulate_tensor(buffer: Parameter, grad: Tensor) -> Tensor:
    return ops.assign_add(buffer, grad)


@_zero.register("Tensor", "Tensor")
def _zero_tensor(after: Tensor, buffer: Parameter) -> Tensor:
    return ops.assign(buffer, ops.zeros_like(ops.depend(buffer, after)))


@_square_sum.register("Tensor")
def _square_sum_tensor(grad: Tensor) -> Tensor:
    # Row sums first: MindSpore's CPU ReduceSum over a whole large tensor runs ~8x slower than over its rows.
    rows = grad.view(grad.shape[0], -1) if grad.ndim > 1 else grad.view(1, -1)
    return (rows * rows).sum(axis=-1).sum().astype(mstype.float32)


def build_optimizer(network: nn.Cell, learning_rate: float, betas: tuple, eps: float, weight_decay: float) -> nn.Adam:
    """Adam whose learning rate is a Parameter the training loop sets every step from the schedule.

    L2 weight decay applies to weights only (not to batch-norm scales/shifts or biases), as is usual.
    Moment buffers are named `moment1.<param>` / `moment2.<param>`, as in the model zoo's checkpoints.
    """
    params = network.trainable_params()
    is_weight = [p.name.endswith(".weight") or ".weight_" in p.name for p in params]
    decay = [p for p, w in zip(params, is_weight) if w]
    other = [p for p, w in zip(params, is_weight) if not w]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    lr = Tensor(learning_rate, mstype.float32)
    return nn.Adam(groups, learning_rate=lr, beta1=betas[0], beta2=betas[1], eps=eps, loss_scale=1.0)


def set_learning_rate(optimizer: nn.Optimizer, value: float) -> None:
    """Write the step's learning rate into the optimizer (the value Adam uses on its next update)."""
    optimizer.learning_rate.set_data(Tensor(value, mstype.float32))


def get_learning_rate(optimizer: nn.Optimizer) -> float:
    """The learning rate Adam will use on its next update."""
    return float(optimizer.learning_rate.asnumpy())


class _Update(nn.Cell):
    """Shared end of a training step: (all-reduce) -> unscale -> norm -> clip -> Adam, or skip when not finite."""

    def __init__(self, optimizer, loss_scale: float, max_norm: float, reducer=None) -> None:
        super().__init__(auto_prefix=False)
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.loss_scale = float(loss_scale)
        self.max_norm = float(max_norm)
        self.reducer = reducer
        self.hyper_map = ops.HyperMap()
        self.skipped = Parameter(Tensor(0, mstype.int32), name="skipped_steps", requires_grad=False)

    def update(self, loss, grads):
        """Apply the loss-scaled `grads` of the batch's mean `loss`; returns (loss, finite flag, norm)."""
        if self.reducer is not None:
            grads = self.reducer(grads)
        # One pass over the gradients: the norm is read off the still-scaled gradients and the unscaling and
        # the clipping are one multiplication (exact for a power-of-two loss scale, like the default 1024).
        unscale = 1.0 / self.loss_scale
        norm = ops.sqrt(ops.addn(self.hyper_map(_square_sum, grads))) * unscale
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        factor = Tensor(unscale, mstype.float32)
        if self.max_norm > 0:
            factor = factor * ops.minimum(self.max_norm / (norm + 1e-6), 1.0)
        grads = self.hyper_map(ops.partial(_scale, factor), grads)
        if finite:
            loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, ops.assign_add(self.skipped, Tensor(1, mstype.int32)))
        return loss, finite, norm


class TrainOneStep(_Update):
    """Returns (loss, finite flag, gradient norm before clipping); skips the update when grads are not finite.

    Args:
        net_with_loss: a cell returning the scalar mean loss.
        optimizer: the Adam from build_optimizer.
        loss_scale: static loss scale (the loss is multiplied, the gradients divided by it).
        max_norm: global gradient-norm clip (0 disables).
        reducer: gradient all-reduce for data-parallel training (None for one process).
    """

    def __init__(self, net_with_loss, optimizer, loss_scale: float, max_norm: float, reducer=None) -> None:
        super().__init__(optimizer, loss_scale, max_norm, reducer)
        self.network = net_with_loss
        self.network.set_grad()
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)

    def loss_and_grads(self, share, *inputs):
        """The mean loss of `inputs` and the gradients of share x loss_scale x that loss."""
        loss = self.network(*inputs)
        sens = ops.fill(loss.dtype, loss.shape, self.loss_scale) * share
        return loss, self.grad(self.network, self.weights)(*inputs, sens)

    def construct(self, *inputs):
        loss, grads = self.loss_and_grads(1.0, *inputs)
        return self.update(loss, grads)


class AccumulateGrads(nn.Cell):
    """One micro-batch of a split batch: its loss-scaled gradients, weighted, added into `accum.*` buffers.

    construct(weight, *inputs) -> the micro-batch's mean loss. `weight` is the micro-batch's share of the batch
    (clips / batch clips), so the summed gradients are those of the whole batch's mean loss. The buffers start
    at zero and ApplyAccumulated zeroes them again after each update. They belong to this cell, never to the
    training step, so checkpoints do not hold them.
    """

    def __init__(self, step: TrainOneStep) -> None:
        super().__init__(auto_prefix=False)
        self.step = step
        self.accum = step.weights.clone(prefix="accum", init="zeros")
        self.hyper_map = ops.HyperMap()

    def construct(self, weight, *inputs):
        loss, grads = self.step.loss_and_grads(weight, *inputs)
        done = self.hyper_map(_accumulate, self.accum, grads)
        return ops.depend(loss, done)


class ApplyAccumulated(nn.Cell):
    """The update after a split batch's micro-batches: TrainOneStep's clip and Adam on the summed gradients,
    then the buffers back to zero for the next batch.

    construct(loss) with the batch's mean loss -> (loss, finite flag, norm), as TrainOneStep.
    """

    def __init__(self, step: TrainOneStep, accumulate: AccumulateGrads) -> None:
        super().__init__(auto_prefix=False)
        self.step = step
        self.accum = accumulate.accum
        self.hyper_map = ops.HyperMap()

    def construct(self, loss):
        loss, finite, norm = self.step.update(loss, self.accum)
        cleared = self.hyper_map(ops.partial(_zero, loss), self.accum)
        return ops.depend(loss, cleared), finite, norm


def micro_batch_count(clips: int, padded_seconds: float, max_seconds: float) -> int:
    """Into how many equal micro-batches a batch is split so each holds at most `max_seconds` of padded audio.

    The smallest divisor k of `clips` with clips / k x padded_seconds <= max_seconds (equal parts: one compiled
    shape per batch shape); 1 when max_seconds is 0 (off) or the batch fits, `clips` when even one clip is past it.
    """
    if max_seconds <= 0:
        return 1
    for parts in range(1, clips + 1):
        if clips % parts == 0 and clips // parts * padded_seconds <= max_seconds:
            return parts
    return clips


class SplitBatchStep:
    """One optimizer step over a batch split into equal micro-batches (TrainingConfig.micro_batch_seconds).

    Each micro-batch's forward and backward runs alone, so the step's memory is that of one micro-batch; the
    gradients are summed (weighted by clips, so they are the whole batch's mean-loss gradients) and then
    clipped and applied once, as TrainOneStep does. The only difference from one pass: batch-norm statistics
    come from each micro-batch (and the running averages move once per micro-batch).
    """

    def __init__(self, step: TrainOneStep) -> None:
        self.accumulate = AccumulateGrads(step)
        self.buffers = self.accumulate.accum
        self.apply = ApplyAccumulated(step, self.accumulate)
        self.accumulate.set_train()
        self.apply.set_train()

    def __call__(self, arrays: tuple, parts: int) -> tuple:
        """arrays: the batch as TrainOneStep takes it (numpy, clips first); -> (loss, finite, norm) tensors."""
        clips = len(arrays[0])
        size = clips // parts
        share = Tensor(size / clips, mstype.float32)
        total = 0.0
        try:
            for i in range(parts):
                part = (Tensor(a[i * size : (i + 1) * size]) for a in arrays)
                loss = self.accumulate(share, *part)
                total += float(loss.asnumpy()) * size / clips
            return self.apply(Tensor(total, mstype.float32))
        except BaseException:
            # Cut short (an error, Ctrl-C): no partial sum may leak into the next batch's gradients.
            for buffer in self.buffers:
                buffer.set_data(Tensor(np.zeros(buffer.shape, np.float32), buffer.dtype))
            raise


class BatchStep:
    """The training step for one batch, as train.py runs it: TrainOneStep, or a SplitBatchStep (built on first
    need) when the batch holds more padded audio than `micro_batch_seconds`.

    Args:
        step: the compiled TrainOneStep (what checkpoints save).
        micro_batch_seconds: TrainingConfig.micro_batch_seconds (0: never split).
        window_stride: SpectConfig.window_stride (seconds per feature frame).
    """

    def __init__(self, step: TrainOneStep, micro_batch_seconds: float, window_stride: float) -> None:
        self.step = step
        self.micro_batch_seconds = micro_batch_seconds
        self.window_stride = window_stride
        self.split: SplitBatchStep | None = None

    def parts(self, arrays: tuple) -> int:
        """How many micro-batches the batch (numpy arrays, features (N, 1, F, T) first) is split into."""
        clips, frames = arrays[0].shape[0], arrays[0].shape[-1]
        return micro_batch_count(clips, frames_to_seconds(frames, self.window_stride), self.micro_batch_seconds)

    def pass_shape(self, arrays: tuple) -> tuple:
        """The feature shape one forward/backward pass runs with (one compiled graph per such shape)."""
        features = arrays[0]
        return (features.shape[0] // self.parts(arrays),) + features.shape[1:]

    def __call__(self, arrays: tuple) -> tuple:
        """One optimizer step over the batch -> (loss, finite flag, norm) tensors."""
        parts = self.parts(arrays)
        if parts == 1:
            return self.step(*(Tensor(a) for a in arrays))
        if self.split is None:
            self.split = SplitBatchStep(self.step)
        return self.split(arrays, parts)
