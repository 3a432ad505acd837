"""A FLOP model of one DeepSpeech2 training step (pure Python; no framework import).

Counted: the multiply-accumulates of the two convolutions, the LSTM gate products and the output layer, two
FLOPs per MAC. Batch norm, tanh, the LSTM gate nonlinearities, softmax, CTC and Adam are left out (together
well under 1 % of the total for the lab's model). A training step is counted as 3x the forward pass (the
backward computes a gradient for the input and one for the weights, each about as costly as the forward).
"""

from __future__ import annotations

from src import shapes  # pure Python: shape arithmetic only

NUM_CLASSES = 29  # labels.json: 28 characters + blank


def forward_macs(batch: int, frames: int, hidden: int, layers: int, bins: int = 161) -> dict[str, int]:
    """Multiply-accumulates of one forward pass, per stage.

    Args:
        batch: clips in the batch (N).
        frames: input spectrogram frames (T); every clip full length.
        hidden, layers: LSTM hidden size and number of bidirectional layers.
        bins: frequency bins of the input (161 at 16 kHz, 20 ms windows).
    Returns:
        {"conv1", "conv2", "lstm", "fc"} -> MACs.
    """
    ch = shapes.CONV_CHANNELS
    macs = {}
    f, t, c_in = bins, frames, 1
    for name, (kf, sf, pf), (kt, st, pt) in zip(("conv1", "conv2"), shapes.CONV_FREQ, shapes.CONV_TIME):
        f, t = (f + 2 * pf - kf) // sf + 1, (t + 2 * pt - kt) // st + 1
        macs[name] = batch * ch * f * t * c_in * kf * kt  # each output value: C_in x kF x kT products
        c_in = ch
    steps = t  # (T', N, 32 * F'') enters the LSTMs
    lstm = 0
    for layer in range(layers):
        inputs = ch * f if layer == 0 else hidden
        # 4 gates, each a product of [x_t, h_{t-1}] (inputs + hidden) with a (hidden,) column, 2 directions
        lstm += 4 * (inputs + hidden) * hidden * 2 * steps * batch
    macs["lstm"] = lstm
    macs["fc"] = steps * batch * hidden * NUM_CLASSES
    return macs


def train_step_flops(batch: int, frames: int, hidden: int, layers: int, bins: int = 161) -> float:
    """FLOPs of one training step: 2 FLOPs per MAC, forward + backward = 3x forward."""
    return 3.0 * 2.0 * sum(forward_macs(batch, frames, hidden, layers, bins).values())
