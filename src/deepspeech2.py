"""DeepSpeech2 network (model-zoo compatible parameter names), the CTC loss cell and the inference cell.

Shapes (N batch, F = 161 bins and F'' = 41 at 16 kHz (src/shapes.py), T input frames, T' = ceil(T / 2) output
steps, L = ModelConfig.hidden_layers (5 in the lab), H = ModelConfig.hidden_size, C = 29 labels):
    features (N, 1, F, T) f32, lengths (N,) i32
    -> MaskConv: conv 41x11 /2x2 -> BN -> tanh -> conv 21x11 /2x1 -> BN -> tanh      (N, F'', T', 32)
    -> (T', N, 32 * F'') -> L x bidirectional LSTM, directions summed                 (T', N, H)
    -> Dense(H -> C, no bias)                                                         (T', N, C)
Padding masks: every stage zeroes the frames past each clip's length, batch norm takes its batch statistics
over valid frames only, and the backward LSTM reads each clip from its own last frame, so a clip's outputs do
not depend on how much padding its batch has.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from src import shapes
from src.config import ModelConfig, SpectConfig


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(N,) int lengths -> (N, max_len) float32, 1 on valid steps."""
    steps = ops.arange(0, max_len, dtype=mstype.int32)
    return (steps.view(1, -1) < lengths.view(-1, 1)).astype(mstype.float32)


class MaskedBatchNorm2d(nn.Cell):
    """Channels-last BatchNorm whose training statistics ignore padded frames; names match nn.BatchNorm2d.

    Input (N, F, T, C) and mask (N, 1, T, 1). Eval mode uses the moving statistics, like nn.BatchNorm2d.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.gamma = Parameter(Tensor(np.ones(num_features, np.float32)), name="gamma")
        self.beta = Parameter(Tensor(np.zeros(num_features, np.float32)), name="beta")
        self.moving_mean = Parameter(
            Tensor(np.zeros(num_features, np.float32)), name="moving_mean", requires_grad=False
        )
        self.moving_variance = Parameter(
            Tensor(np.ones(num_features, np.float32)), name="moving_variance", requires_grad=False
        )

    def construct(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.training:
            count = mask.sum() * x.shape[1]
            mean = (x * mask).sum(axis=(0, 1, 2)) / count
            centred = (x - mean) * mask
            var = (centred * centred).sum(axis=(0, 1, 2)) / count
            unbiased = var * count / ops.maximum(count - 1.0, 1.0)
            # Moving statistics are running averages, not learned: keep gradients out of them.
            new_mean = self.momentum * self.moving_mean + (1 - self.momentum) * ops.stop_gradient(mean)
            new_var = self.momentum * self.moving_variance + (1 - self.momentum) * ops.stop_gradient(unbiased)
            x = ops.depend(x, ops.assign(self.moving_mean, new_mean))
            x = ops.depend(x, ops.assign(self.moving_variance, new_var))
        else:
            mean, var = self.moving_mean, self.moving_variance
        return (x - mean) * (self.gamma / ops.sqrt(var + self.eps)) + self.beta


class MatmulConv2d(nn.Cell):
    """A bias-free Conv2d computed with matrix products, channels-last; weight (out, in, kF, kT) as nn.Conv2d.

    MindSpore's CPU convolution falls back to oneDNN's reference kernel for these shapes (about 1 GFLOP/s
    here) while its matmul runs near peak; see bench/conv_speed.py. Frequency taps are unfolded into the
    contraction, time taps are applied as shifted sums of one product, so memory stays ~ kT x the output.
    Input (N, F, T, C_in), already padded -> (N, F', T', C_out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple, stride: tuple) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel, stride
        kf, kt = kernel
        std = np.sqrt(2.0 / (kf * kt * out_channels))  # the model zoo's He-style init
        init = np.random.normal(0, std, (out_channels, in_channels, kf, kt)).astype(np.float32)
        self.weight = Parameter(Tensor(init), name="weight")

    def construct(self, x: Tensor) -> Tensor:
        kf, kt = self.kernel_size
        sf, st = self.stride
        o = self.out_channels
        n, f, t, c = x.shape
        out_f = (f - kf) // sf + 1
        out_t = (t - kt) // st + 1
        # One gather per axis instead of strided slices (the CPU StridedSliceGrad kernel fails on stride > 1).
        f_idx = Tensor((np.arange(out_f)[:, None] * sf + np.arange(kf)[None, :]).reshape(-1), mstype.int32)
        cols = ops.gather(x, f_idx, 1).view(n, out_f, kf, t, c).transpose(0, 1, 3, 4, 2)  # (N, F', T, C, kF)
        # (C*kF, kT*O): w[(c, i), (j, o)] = weight[o, c, i, j]
        w = self.weight.transpose(1, 2, 3, 0).view(c * kf, kt * o)
        # 2-D product: a batched matmul would broadcast (copy) the weight once per batch row.
        y = ops.matmul(cols.view(n * out_f * t, c * kf), w).view(n, out_f, t * kt, o)
        # out[.., u, :] = sum_j y[.., (st*u + j) * kT + j, :]
        t_idx = Tensor(
            ((np.arange(out_t)[:, None] * st + np.arange(kt)[None, :]) * kt + np.arange(kt)).reshape(-1), mstype.int32
        )
        return ops.gather(y, t_idx, 2).view(n, out_f, out_t, kt, o).sum(axis=3)


class MaskConv(nn.Cell):
    """The two-convolution front end with padding masks, channels-last inside.

    Input (N, 1, F, T), lengths (N,) -> (N, F'', T', 32), lengths (N,) i32.
    """

    def __init__(self) -> None:
        super().__init__()
        (k1f, s1f, p1f), (k2f, s2f, p2f) = shapes.CONV_FREQ
        (k1t, s1t, p1t), (k2t, s2t, p2t) = shapes.CONV_TIME
        ch = shapes.CONV_CHANNELS
        self.pad1 = ops.Pad(((0, 0), (p1f, p1f), (p1t, p1t), (0, 0)))
        self.conv1 = MatmulConv2d(1, ch, (k1f, k1t), (s1f, s1t))
        self.bn1 = MaskedBatchNorm2d(ch)
        self.pad2 = ops.Pad(((0, 0), (p2f, p2f), (p2t, p2t), (0, 0)))
        self.conv2 = MatmulConv2d(ch, ch, (k2f, k2t), (s2f, s2t))
        self.bn2 = MaskedBatchNorm2d(ch)
        self.tanh = nn.Tanh()

    def _block(self, x, lengths, pad, conv, bn, time_conv):
        kernel, stride, padding = time_conv
        x = conv(pad(x))
        # Integer conv formula: upstream divided floats, which rounds the other way for some lengths.
        lengths = ops.floor_div(lengths + 2 * padding - kernel, stride) + 1
        mask = sequence_mask(lengths, x.shape[2]).view(x.shape[0], 1, x.shape[2], 1)
        x = self.tanh(bn(x * mask, mask)) * mask
        return x, lengths

    def construct(self, x: Tensor, lengths: Tensor):
        x = x.transpose(0, 2, 3, 1)  # (N, F, T, 1)
        x, lengths = self._block(x, lengths, self.pad1, self.conv1, self.bn1, shapes.CONV_TIME[0])
        x, lengths = self._block(x, lengths, self.pad2, self.conv2, self.bn2, shapes.CONV_TIME[1])
        return x, lengths


class BiLSTM(nn.LSTM):
    """One bidirectional LSTM layer whose two directions are summed; parameter names are nn.LSTM's.

    With `masked`, the backward direction reverses each sequence within its own length (ReverseSequence), so
    it starts at the clip's last real frame, and outputs past the length are zeroed. Both directions run the
    fused LSTM kernel (nn.LSTM's own seq_length path is a slow step-by-step loop).
    Input (T, N, I), lengths (N,) -> (T, N, H).
    """

    def __init__(self, input_size: int, hidden_size: int, masked: bool = True) -> None:
        super().__init__(input_size=input_size, hidden_size=hidden_size, bidirectional=True, has_bias=True)
        self.masked = masked

    def construct(self, x: Tensor, lengths: Tensor) -> Tensor:
        zeros = ops.zeros((x.shape[1], self.hidden_size), x.dtype)
        state = (zeros, zeros)
        w_ih, w_hh, b_ih, b_hh = self.w_ih_list, self.w_hh_list, self.b_ih_list, self.b_hh_list
        forward, _ = self.rnn(x, state, None, w_ih[0], w_hh[0], b_ih[0], b_hh[0])
        if self.masked:
            backward, _ = self.rnn(self.reverse_sequence(x, lengths), state, None, w_ih[1], w_hh[1], b_ih[1], b_hh[1])
            backward = self.reverse_sequence(backward, lengths)
            mask = sequence_mask(lengths, x.shape[0]).T.view(x.shape[0], x.shape[1], 1)
            return (forward + backward) * mask
        backward, _ = self.rnn(self.reverse(x), state, None, w_ih[1], w_hh[1], b_ih[1], b_hh[1])
        return forward + self.reverse(backward)


class BatchRNN(nn.Cell):
    """A stack of summed bidirectional LSTMs, held as `lstms` (names RNN.lstms.{i}.weight_ih_l0 ...)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, masked: bool = True) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.lstms = nn.CellList([BiLSTM(size, hidden_size, masked) for size in sizes])

    def construct(self, x: Tensor, lengths: Tensor) -> Tensor:
        for lstm in self.lstms:
            x = lstm(x, lengths)
        return x


class SequenceWise(nn.Cell):
    """Apply a Dense to every time step: (T, N, H) -> (T, N, C). Holds it as `module` (fc.module.weight)."""

    def __init__(self, module: nn.Dense) -> None:
        super().__init__()
        self.module = module
        bound = 1.0 / module.in_channels
        module.weight.set_data(Tensor(np.random.uniform(-bound, bound, module.weight.shape).astype(np.float32)))

    def construct(self, x: Tensor) -> Tensor:
        t, n = x.shape[0], x.shape[1]
        return self.module(x.view(t * n, -1)).view(t, n, -1)


class DeepSpeechModel(nn.Cell):
    """DeepSpeech2 as in the model zoo; `construct(x, lengths)` returns (logits (T', N, C), lengths (N,) i32).

    Args:
        labels: the label list (its length is the class count, blank last).
        rnn_hidden_size, nb_layers: ModelConfig.hidden_size / hidden_layers.
        sample_rate, window_size: SpectConfig values (they set the input height).
        masked: apply padding masks (True for training and eval; export may use False for a fixed length).
    """

    def __init__(
        self,
        labels: list[str],
        rnn_hidden_size: int = 1024,
        nb_layers: int = 5,
        sample_rate: int = 16000,
        window_size: float = 0.02,
        masked: bool = True,
    ) -> None:
        super().__init__()
        self.masked = masked
        self.conv = MaskConv()
        rnn_input_size = shapes.rnn_input_size(sample_rate, window_size)
        self.RNN = BatchRNN(rnn_input_size, rnn_hidden_size, nb_layers, masked)
        self.fc = SequenceWise(nn.Dense(rnn_hidden_size, len(labels), has_bias=False))

    def construct(self, x: Tensor, lengths: Tensor):
        lengths = lengths.astype(mstype.int32)
        x, out_lengths = self.conv(x, lengths)  # (N, F'', T', C)
        n, f, t, c = x.shape
        x = x.transpose(2, 0, 3, 1).view(t, n, c * f)  # (T', N, C*F''), feature c*F''+f as upstream
        x = self.RNN(x, out_lengths)
        return self.fc(x), out_lengths


class NetWithLossClass(nn.Cell):
    """Mean CTC loss over the batch (blank = last label, as P.CTCLoss assumes upstream).

    Inputs: features (N, 1, F, T) f32, lengths (N,) i32, labels (N, S) i32 padded, label_lengths (N,) i32.
    """

    def __init__(self, network: DeepSpeechModel, blank: int) -> None:
        super().__init__(auto_prefix=False)
        self.network = network
        self.blank = blank

    def construct(self, inputs, input_length, labels, label_lengths):
        logits, out_lengths = self.network(inputs, input_length)
        log_probs = ops.log_softmax(logits, axis=-1)
        loss, _ = ops.ctc_loss(log_probs, labels, out_lengths, label_lengths, blank=self.blank, reduction="none")
        return loss.mean()


class PredictWithSoftmax(nn.Cell):
    """Inference: probabilities (N, T', C) and output lengths (N,) i32."""

    def __init__(self, network: DeepSpeechModel) -> None:
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, inputs, input_length):
        logits, out_lengths = self.network(inputs, input_length)
        return ops.softmax(logits, axis=-1).transpose(1, 0, 2), out_lengths


def build_network(labels: list[str], spect: SpectConfig, model: ModelConfig) -> DeepSpeechModel:
    """The DeepSpeech2 network for a config (input height from SpectConfig, sizes from ModelConfig)."""
    return DeepSpeechModel(labels, model.hidden_size, model.hidden_layers, spect.sample_rate, spect.window_size)
