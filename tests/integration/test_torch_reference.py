"""The PyTorch benchmark reference is the project's network: same weights -> same loss, same first update.

This is what makes bench/train_speed.py's speed and memory ratios a comparison of two implementations of one
training step rather than of two different models.
"""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
torch = pytest.importorskip("torch", reason="PyTorch is an optional benchmark dependency (bench/torch_reference.py)")
pytestmark = [pytest.mark.mindspore, pytest.mark.slow]  # ~30 s: two compiled steps

HIDDEN, LAYERS = 16, 2


def project_step(labels):
    from mindspore import Tensor

    from src import config as C
    from src.deepspeech2 import NetWithLossClass, build_network
    from src.train_step import TrainOneStep, build_optimizer

    cfg = C.TrainConfig(ModelConfig=C.ModelConfig(hidden_size=HIDDEN, hidden_layers=LAYERS))
    ms.set_seed(5)
    net = build_network(labels, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    # Large output weights make the loss depend strongly on the LSTM outputs: at the default init, swapping two
    # LSTM gates moves the first loss by only ~4e-6 relative; with these, by ~1e-3 (100x the tolerance).
    fc = net.fc.module.weight
    fc.set_data(Tensor(fc.asnumpy() * 30.0))
    o = cfg.OptimConfig
    optimizer = build_optimizer(net, o.learning_rate, o.betas, o.eps, o.weight_decay)
    loss_cell = NetWithLossClass(net, blank=len(labels) - 1)
    step = TrainOneStep(loss_cell, optimizer, o.loss_scale, o.max_norm)
    step.set_train()
    weights = {p.name: p.asnumpy().copy() for p in net.get_parameters()}  # asnumpy may share memory
    return (lambda batch: float(step(*(Tensor(a) for a in batch))[0].asnumpy())), weights, o


def test_same_weights_same_loss_and_update():
    from bench import torch_reference as ref
    from bench.train_speed import synthetic_batch
    from src.config import REPO_ROOT
    from src.text import load_labels

    labels = load_labels(REPO_ROOT / "labels.json")
    run_project, weights, o = project_step(labels)
    model = ref.TorchDeepSpeech(HIDDEN, LAYERS).train()
    assert ref.load_project_weights(model, weights) == len(weights)  # every project tensor has a home
    optimizer = ref.build_optimizer(model, o.learning_rate, tuple(o.betas), o.eps, o.weight_decay)
    batch = synthetic_batch(2, 1.5, seed=3)  # (2, 1, 161, 151), 22 labels per clip
    tensors = tuple(torch.from_numpy(a) if i == 0 else torch.from_numpy(a).long() for i, a in enumerate(batch))

    losses = [(run_project(batch), ref.train_step(model, optimizer, tensors, o.max_norm)) for _ in range(2)]
    (first_ms, first_pt), (second_ms, second_pt) = losses
    np.testing.assert_allclose(first_ms, first_pt, rtol=1e-5)  # the forward pass and the loss
    assert second_ms < first_ms  # the update did something ...
    np.testing.assert_allclose(second_ms, second_pt, rtol=5e-5)  # ... and the same thing on both sides
