"""One compiled training step: scaled CTC loss -> unscaled grads -> (all-reduce) -> clip -> Adam, NaN-safe.

Upstream handed loss_scale=1024 to Adam without scaling the loss, so gradients reached Adam 1024x too small
and eps acted 1024x too large. Here the loss really is scaled (through the backward's sensitivity) and the
gradients are divided back before clipping, so Adam sees true gradients and the configured eps.
"""

from __future__ import annotations

from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

_scale = ops.MultitypeFuncGraph("scale")
_square_sum = ops.MultitypeFuncGraph("square_sum")


@_scale.register("Tensor", "Tensor")
def _scale_tensor(factor: Tensor, grad: Tensor) -> Tensor:
    return grad * factor.astype(grad.dtype)


@_square_sum.register("Tensor")
def _square_sum_tensor(grad: Tensor) -> Tensor:
    return (grad * grad).sum().astype(mstype.float32)


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


class TrainOneStep(nn.Cell):
    """Returns (loss, finite flag, gradient norm before clipping); skips the update when grads are not finite.

    Args:
        net_with_loss: a cell returning the scalar mean loss.
        optimizer: the Adam from build_optimizer.
        loss_scale: static loss scale (the loss is multiplied, the gradients divided by it).
        max_norm: global gradient-norm clip (0 disables).
        reducer: gradient all-reduce for data-parallel training (None for one process).
    """

    def __init__(self, net_with_loss, optimizer, loss_scale: float, max_norm: float, reducer=None) -> None:
        super().__init__(auto_prefix=False)
        self.network = net_with_loss
        self.network.set_grad()
        self.optimizer = optimizer
        self.weights = optimizer.parameters
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.loss_scale = float(loss_scale)
        self.max_norm = float(max_norm)
        self.reducer = reducer
        self.hyper_map = ops.HyperMap()
        self.skipped = Parameter(Tensor(0, mstype.int32), name="skipped_steps", requires_grad=False)

    def construct(self, *inputs):
        loss = self.network(*inputs)
        sens = ops.fill(loss.dtype, loss.shape, self.loss_scale)
        grads = self.grad(self.network, self.weights)(*inputs, sens)
        if self.reducer is not None:
            grads = self.reducer(grads)
        grads = self.hyper_map(ops.partial(_scale, Tensor(1.0 / self.loss_scale, mstype.float32)), grads)
        norm = ops.sqrt(ops.addn(self.hyper_map(_square_sum, grads)))
        finite = ops.logical_and(ops.isfinite(norm), ops.isfinite(loss))
        if self.max_norm > 0:
            factor = ops.minimum(self.max_norm / (norm + 1e-6), 1.0)
            grads = self.hyper_map(ops.partial(_scale, factor), grads)
        if finite:
            loss = ops.depend(loss, self.optimizer(grads))
        else:
            loss = ops.depend(loss, ops.assign_add(self.skipped, Tensor(1, mstype.int32)))
        return loss, finite, norm
