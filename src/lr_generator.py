"""Step-wise learning-rate schedule: constant, then divided by `learning_anneal` after every epoch.

Upstream computed this array and then built Adam with a constant rate, so the schedule never applied; here
the trainer (src/trainer.py) writes lr[global_step] into the optimizer before every step (pinned by a test).
"""

from __future__ import annotations

import numpy as np


def get_lr(
    lr_init: float, total_epochs: int, steps_per_epoch: int, learning_anneal: float = 1.1, constant_epochs: int = -1
) -> np.ndarray:
    """Learning rate of every step.

    Args:
        lr_init: initial learning rate.
        total_epochs, steps_per_epoch: schedule length.
        learning_anneal: divisor applied once per epoch after the constant phase (upstream hard-coded 1.1).
        constant_epochs: epochs at lr_init; -1 means total_epochs // 2 + 1, as upstream (epochs 0..total//2).
    Returns:
        (total_epochs * steps_per_epoch,) float32.
    """
    if total_epochs <= 0 or steps_per_epoch <= 0:
        raise ValueError("total_epochs and steps_per_epoch must be positive")
    flat = total_epochs // 2 + 1 if constant_epochs < 0 else constant_epochs
    epochs = np.arange(total_epochs)
    per_epoch = lr_init / learning_anneal ** np.maximum(epochs - flat + 1, 0)
    return np.repeat(per_epoch, steps_per_epoch).astype(np.float32)
