"""src/lr_generator.py: constant, then divided by learning_anneal after every epoch."""

from __future__ import annotations

import numpy as np
import pytest

from src.lr_generator import get_lr


def upstream_get_lr(lr_init: float, total_epochs: int, steps_per_epoch: int) -> np.ndarray:
    """The model zoo's schedule, restated: lr_init up to and including epoch total_epochs // 2, then / 1.1."""
    half = total_epochs // 2
    per_epoch = [lr_init if i < half else lr_init / 1.1 ** (i - half) for i in range(total_epochs)]
    return np.repeat(np.array(per_epoch), steps_per_epoch).astype(np.float32)


def test_default_reproduces_upstream_exactly() -> None:
    for epochs in (1, 2, 5, 70):
        np.testing.assert_array_equal(get_lr(3e-4, epochs, 3), upstream_get_lr(3e-4, epochs, 3))


def test_default_constant_epochs_is_half_the_epochs() -> None:
    lr = get_lr(0.8, total_epochs=6, steps_per_epoch=1, learning_anneal=2.0)
    # 6 // 2 = 3; as upstream, epoch 3 is the last one at lr_init (exponent epoch - 3 = 0).
    np.testing.assert_allclose(lr, [0.8, 0.8, 0.8, 0.8, 0.4, 0.2])


def test_learning_anneal_is_used() -> None:
    lr = get_lr(1.0, total_epochs=6, steps_per_epoch=2, learning_anneal=4.0, constant_epochs=1)
    assert lr[0] == 1.0
    # Every annealed epoch is the previous one divided by learning_anneal; steps within an epoch are equal.
    np.testing.assert_allclose(lr[-2:], [lr[-3] / 4.0] * 2)
    np.testing.assert_allclose(lr[-4:-2], [lr[-5] / 4.0] * 2)


def test_lab_defaults() -> None:
    lr = get_lr(3e-4, total_epochs=70, steps_per_epoch=3)
    assert lr.shape == (210,)
    assert lr.dtype == np.float32
    np.testing.assert_allclose(lr[: 36 * 3], 3e-4)
    np.testing.assert_allclose(lr[36 * 3 : 37 * 3], 3e-4 / 1.1, rtol=1e-6)
    np.testing.assert_allclose(lr[-1], 3e-4 / 1.1**34, rtol=1e-5)
    assert np.all(np.diff(lr) <= 0)


def test_explicit_constant_epochs_means_that_many_epochs_at_lr_init() -> None:
    lr = get_lr(1.0, total_epochs=4, steps_per_epoch=2, learning_anneal=2.0, constant_epochs=1)
    np.testing.assert_allclose(lr, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125])


@pytest.mark.parametrize(("epochs", "steps"), [(1, 1), (3, 7), (10, 250)])
def test_length_and_dtype(epochs: int, steps: int) -> None:
    lr = get_lr(1e-3, epochs, steps)
    assert lr.shape == (epochs * steps,)
    assert lr.dtype == np.float32


def test_constant_epochs_beyond_total_is_flat() -> None:
    lr = get_lr(2e-4, total_epochs=3, steps_per_epoch=2, learning_anneal=1.1, constant_epochs=10)
    np.testing.assert_allclose(lr, 2e-4)


@pytest.mark.parametrize(("epochs", "steps"), [(0, 5), (5, 0), (-1, 5), (5, -3)])
def test_bad_sizes_raise(epochs: int, steps: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        get_lr(1e-3, epochs, steps)
