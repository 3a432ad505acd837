"""An independent PyTorch implementation of the project's DeepSpeech2 training step (a benchmark reference).

Optional benchmark dependency, not in requirements.txt: `pip install "torch==2.13.0+cpu" --index-url
https://download.pytorch.org/whl/cpu`. The architecture is written out here from the model description, not
imported from src/, so bench/train_speed.py compares two implementations of one network:

    features (N, 1, 161, T)
    -> conv 41x11 stride 2x2 pad (20, 5) -> BN -> tanh -> conv 21x11 stride 2x1 pad (10, 5) -> BN -> tanh
                                                                                 (N, 32, 41, T')
    -> (T', N, 32 * 41), feature index c * 41 + f
    -> 5 x bidirectional LSTM(hidden), the two directions summed                 (T', N, H)
    -> Linear(H -> 29, no bias)                                                  (T', N, 29)
    -> log-softmax, CTC (blank 28), per-clip sums averaged over the batch
    -> clip the global gradient norm -> Adam (L2 weight decay on weights only)

Every clip in a benchmark batch is full length, so no packing or masks are needed: with full lengths the
project's masked batch norm and per-clip reversal compute exactly these numbers (tests/integration pins it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

NUM_CLASSES = 29
BLANK = 28
RNN_INPUT = 32 * 41


class TorchDeepSpeech(nn.Module):
    """DeepSpeech2 with parameter names that map 1:1 onto the project's (see `load_project_weights`)."""

    def __init__(self, hidden: int = 1024, layers: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, (41, 11), stride=(2, 2), padding=(20, 5), bias=False)
        self.bn1 = nn.BatchNorm2d(32, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(32, 32, (21, 11), stride=(2, 1), padding=(10, 5), bias=False)
        self.bn2 = nn.BatchNorm2d(32, eps=1e-5, momentum=0.1)
        sizes = [RNN_INPUT] + [hidden] * (layers - 1)
        self.lstms = nn.ModuleList(nn.LSTM(size, hidden, bidirectional=True) for size in sizes)
        self.fc = nn.Linear(hidden, NUM_CLASSES, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 161, T) -> logits (T', N, 29)."""
        x = torch.tanh(self.bn1(self.conv1(x)))
        x = torch.tanh(self.bn2(self.conv2(x)))  # (N, 32, 41, T')
        n, c, f, t = x.shape
        x = x.reshape(n, c * f, t).permute(2, 0, 1).contiguous()  # (T', N, 1312)
        for lstm in self.lstms:
            out, _ = lstm(x)  # (T', N, 2H): forward then backward direction
            x = out[..., : lstm.hidden_size] + out[..., lstm.hidden_size :]
        return self.fc(x)


def ctc_mean_loss(model: TorchDeepSpeech, features, lengths, labels, label_lengths) -> torch.Tensor:
    """Mean over the batch of each clip's CTC loss (a sum over its frames), blank 28."""
    logits = model(features)
    out_lengths = (lengths + 2 * 5 - 11) // 2 + 1  # conv1 shortens time; conv2 keeps it
    log_probs = torch.log_softmax(logits, dim=-1)
    loss = nn.functional.ctc_loss(log_probs, labels, out_lengths, label_lengths, blank=BLANK, reduction="none")
    return loss.mean()


def build_optimizer(model: nn.Module, lr: float, betas: tuple, eps: float, weight_decay: float):
    """Adam with L2 decay on weights only (batch-norm scales/shifts and biases excluded), as the project's."""
    named = [(project_name(name), p) for name, p in model.named_parameters()]
    is_weight = [name.endswith(".weight") or ".weight_" in name for name, _ in named]  # the project's rule
    decay = [p for (_, p), w in zip(named, is_weight) if w]
    other = [p for (_, p), w in zip(named, is_weight) if not w]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.Adam(groups, lr=lr, betas=betas, eps=eps)


def train_step(model, optimizer, batch: tuple, max_norm: float) -> float:
    """One step: loss, backward, global-norm clip, Adam. Returns the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = ctc_mean_loss(model, *batch)
    loss.backward()
    if max_norm > 0:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return float(loss.detach())


def project_name(torch_name: str) -> str:
    """The project's checkpoint name for a parameter or buffer of TorchDeepSpeech (`lstms.0.weight_ih_l0` ->
    `RNN.lstms.0.weight_ih_l0`, `bn1.weight` -> `conv.bn1.gamma`, `fc.weight` -> `fc.module.weight`)."""
    head, _, rest = torch_name.partition(".")
    if head in ("conv1", "conv2"):
        return f"conv.{torch_name}"
    if head in ("bn1", "bn2"):
        bn = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
        return f"conv.{head}.{bn[rest]}"
    if head == "lstms":
        return f"RNN.{torch_name}"
    if head == "fc":
        return f"fc.module.{rest}"
    raise KeyError(torch_name)


def load_project_weights(model: TorchDeepSpeech, weights: dict[str, np.ndarray]) -> int:
    """Copy the project's parameters (name -> array, as in its checkpoints) into the model; returns the count.

    Layouts agree without conversion: conv weights are (out, in, kF, kT) on both sides and both LSTMs hold
    their gates in the order i, f, g, o (the project's CPU kernel is oneDNN's, whose order is PyTorch's).
    """
    state = model.state_dict()
    copied = 0
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        value = np.asarray(weights[project_name(name)], dtype=np.float32)
        if value.shape != tuple(tensor.shape):
            raise ValueError(f"{name}: shape {value.shape} from the project, {tuple(tensor.shape)} expected")
        state[name] = torch.from_numpy(value.copy())
        copied += 1
    model.load_state_dict(state)
    return copied
