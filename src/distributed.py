"""Data-parallel set-up under msrun (CPU: mccl, GPU: NCCL, Ascend: HCCL): ranks, gradient averaging."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def init_data_parallel():
    """Join the collective group started by msrun.

    Returns:
        (rank, world size, make_reducer) where make_reducer(parameters) returns the gradient all-reduce
        (mean over ranks) that TrainOneStep applies before clipping and Adam.
    """
    import mindspore as ms
    from mindspore import nn
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, world = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=world)

    def make_reducer(parameters):
        return nn.DistributedGradReducer(parameters, mean=True, degree=world)

    logger.info("data-parallel training: rank %d of %d", rank, world)
    return rank, world, make_reducer


def max_weight_spread(network, world: int) -> float:
    """max over weights of sum over ranks |w_rank - mean_rank(w)|: 0.0 exactly when all ranks agree.

    (Only SUM all-reduce exists on CPU, hence deviations from the mean rather than max - min.)
    """
    import numpy as np
    from mindspore import Tensor, ops

    flat = np.concatenate([p.asnumpy().reshape(-1) for p in network.trainable_params()])
    total = ops.AllReduce()
    mean = total(Tensor(flat)).asnumpy() / world
    return float(total(Tensor(np.abs(flat - mean))).asnumpy().max())
