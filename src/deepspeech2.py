"""DeepSpeech2 network (model-zoo compatible parameter names), the CTC loss cell and the inference cell.

Shapes (N batch, F = 161 bins and F'' = 41 at 16 kHz (src/shapes.py), T input frames, T' = ceil(T / 2) output
steps, L = ModelConfig.hidden_layers (5 in the lab), H = ModelConfig.hidden_size, C = 29 labels):
    features (N, 1, F, T) f32, lengths (N,) i32
    -> MaskConv: conv 41x11 /2x2 -> BN -> tanh -> conv 21x11 /2x1 -> BN -> tanh      (N, T', F'', 32)
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
from mindspore.ops.operations._grad_ops import LSTMGrad  # the fused kernel's own backward

from src import lstm_kernel, shapes
from src.config import ModelConfig, SpectConfig


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(N,) int lengths -> (N, max_len) float32, 1 on valid steps."""
    steps = ops.arange(0, max_len, dtype=mstype.int32)
    return (steps.view(1, -1) < lengths.view(-1, 1)).astype(mstype.float32)


def spread(small: Tensor, like: Tensor) -> Tensor:
    """`small` broadcast to `like`'s shape, for an elementwise op with it: MindSpore's CPU Mul/Add/Sub that
    broadcast internally need ~5x the output's size in scratch memory (0.7 GB for one 0.14 GB feature map),
    an explicit BroadcastTo then a same-shape op only the output's."""
    return small.broadcast_to(like.shape)


def channel_sum(x: Tensor) -> Tensor:
    """Sum of a channels-last tensor over every axis but the last, as one matrix product with a row of ones
    (MindSpore's CPU ReduceSum over leading axes is ~15x slower on the feature maps here)."""
    rows = x.view(-1, x.shape[-1])
    return ops.matmul(ops.ones((1, rows.shape[0]), x.dtype), rows).view(-1)


class _SpreadChannels(nn.Cell):
    """A per-channel vector spread over a channels-last x's shape, whose backward sums over positions with
    channel_sum (autodiff's gradient of BroadcastTo is MindSpore's slow ReduceSum over leading axes: 20 ms of
    each 4 x 10 s pass for the first batch norm's mean)."""

    def construct(self, v: Tensor, like: Tensor) -> Tensor:
        return spread(v, like)

    def bprop(self, v: Tensor, like: Tensor, out: Tensor, dout: Tensor) -> tuple:
        return channel_sum(dout), ops.zeros_like(like)


class _ChannelAffine(nn.Cell):
    """x * scale + shift per channel of a channels-last x, whose backward sums over positions with channel_sum
    (autodiff's broadcast reduction is MindSpore's slow ReduceSum over leading axes)."""

    def construct(self, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        return x * spread(scale, x) + spread(shift, x)

    def bprop(self, x: Tensor, scale: Tensor, shift: Tensor, out: Tensor, dout: Tensor) -> tuple:
        return dout * spread(scale, dout), channel_sum(dout * x), channel_sum(dout)


class MaskedBatchNorm2d(nn.Cell):
    """Channels-last BatchNorm whose training statistics ignore padded frames; names match nn.BatchNorm2d.

    Input (N, T, F, C) with zeros on padded frames, and mask (N, T, 1, 1). Eval mode uses the moving
    statistics, like nn.BatchNorm2d.
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
        self.affine = _ChannelAffine()
        self.spread_mean = _SpreadChannels()

    def construct(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.training:
            # Every full-size temporary costs memory in graph mode, so the statistics use as few as possible:
            # x is zero on padded frames, so its plain sum is the valid sum, and each padded position adds
            # exactly mean^2 to the centred sum of squares, which is taken back out.
            total = x.shape[0] * x.shape[1] * x.shape[2]
            count = mask.sum() * x.shape[2]
            mean = channel_sum(x) / count
            centred = x - self.spread_mean(mean, x)
            var = (channel_sum(centred * centred) - (total - count) * mean * mean) / count
            unbiased = var * count / ops.maximum(count - 1.0, 1.0)
            # Moving statistics are running averages, not learned: keep gradients out of them.
            new_mean = self.momentum * self.moving_mean + (1 - self.momentum) * ops.stop_gradient(mean)
            new_var = self.momentum * self.moving_variance + (1 - self.momentum) * ops.stop_gradient(unbiased)
            x = ops.depend(x, ops.assign(self.moving_mean, new_mean))
            x = ops.depend(x, ops.assign(self.moving_variance, new_var))
        else:
            mean, var = self.moving_mean, self.moving_variance
        scale = self.gamma / ops.sqrt(var + self.eps)
        return self.affine(x, scale, self.beta - mean * scale)


# Largest temporary a convolution chunk may create (bytes): the matmul convolution works through the time
# axis in chunks so that its memory stays bounded whatever the batch size and clip length.
CONV_CHUNK_BYTES = 64 * 2**20


class _MatmulConvFn(nn.Cell):
    """The convolution as a function of (input, weight) with its own backward (see MatmulConv2d).

    Autodiff would keep every forward intermediate (the gathered input, the per-tap products) alive until
    the backward pass; this backward rebuilds the one it needs from the input instead, so a training step
    holds only the convolution's input and output between the passes. Both passes run in time chunks,
    each chained to the previous one, so only one chunk's temporaries exist at a time.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple, stride: tuple, input_grad: bool) -> None:
        super().__init__()
        self.c, self.o = in_channels, out_channels
        self.kf, self.kt = kernel
        self.sf, self.st = stride
        self.taps = -(-self.kt // self.st)
        self.k = self.kf * self.st * self.c  # contraction size: (frequency tap, phase, channel)
        self.width = max(self.k, self.taps * self.o)  # row width of the larger temporary (cols or y)
        self.input_grad = input_grad
        self.matmul_ta = ops.MatMul(transpose_a=True)
        self.matmul_tb = ops.MatMul(transpose_b=True)

    def _sizes(self, x: Tensor) -> tuple:
        """(N, T, F, out_F, out_T, steps, chunk): steps = folded time steps feeding the output."""
        n, t, f, _ = x.shape
        out_f = (f - self.kf) // self.sf + 1
        out_t = (t - self.kt) // self.st + 1
        chunk = CONV_CHUNK_BYTES // (n * out_f * self.width * 4)  # steps per chunk
        if chunk < 1:
            chunk = 1
        return n, t, f, out_f, out_t, out_t + self.taps - 1, chunk

    def _fold_time(self, x: Tensor, steps: int) -> Tensor:
        """(N, T, F, C) -> (N, steps, F, s*C): frame t*s + p becomes channel block p of step t."""
        n, t, f, c = x.shape
        st = self.st
        if steps * st > t:
            x = ops.concat((x, ops.zeros((n, steps * st - t, f, c), x.dtype)), axis=1)
        elif steps * st < t:
            x = x[:, : steps * st]
        if st > 1:
            x = x.view(n, steps, st, f, c).transpose(0, 1, 3, 2, 4).view(n, steps, f, st * c)
        return x

    def _fold_weight(self, w: Tensor) -> Tensor:
        """(O, C, kF, kT) -> (kF * s * C, taps * O): w2[(i, p, c), (m, o)] = w[o, c, i, m * s + p]."""
        o, c, kf, kt, st, taps = self.o, self.c, self.kf, self.kt, self.st, self.taps
        if taps * st > kt:
            w = ops.concat((w, ops.zeros((o, c, kf, taps * st - kt), w.dtype)), axis=3)
        return w.view(o, c, kf, taps, st).transpose(2, 4, 1, 3, 0).view(self.k, taps * o)

    def _unfold_weight_grad(self, dw2: Tensor) -> Tensor:
        """The inverse of _fold_weight's layout change: (kF * s * C, taps * O) -> (O, C, kF, kT)."""
        o, c, kf, kt, st, taps = self.o, self.c, self.kf, self.kt, self.st, self.taps
        dw = dw2.view(kf, st, c, taps, o).transpose(4, 2, 0, 3, 1).view(o, c, kf, taps * st)
        return dw[:, :, :, :kt]

    def _freq_rows(self, out_f: int) -> np.ndarray:
        """(out_F * kF,): the input frequency row feeding output row v through tap i, in (v, i) order."""
        return (np.arange(out_f)[:, None] * self.sf + np.arange(self.kf)[None, :]).reshape(-1)

    def _freq_index(self, out_f: int) -> Tensor:
        """_freq_rows as the i32 index _cols gathers with."""
        return Tensor(self._freq_rows(out_f), mstype.int32)

    def _cols(self, xf: Tensor, out_f: int) -> Tensor:
        """(N, t, F, s*C) -> (N * t * F', kF * s * C): rows (n, t, v), columns (i, p, c)."""
        # One gather instead of strided slices (the CPU StridedSliceGrad kernel fails on stride > 1).
        return ops.gather(xf, self._freq_index(out_f), 2).view(-1, self.k)

    def construct(self, x: Tensor, w: Tensor) -> Tensor:
        n, _, _, out_f, out_t, steps, chunk = self._sizes(x)
        xf, w2, taps = self._fold_time(x, steps), self._fold_weight(w), self.taps
        outs = []
        done = w2
        for a in range(0, out_t, chunk):  # a plain range: graph mode unrolls it (a helper list sometimes failed)
            b = a + chunk if a + chunk < out_t else out_t
            # Output steps [a, b) need folded input steps [a, b + taps - 1).
            cols = self._cols(ops.depend(xf[:, a : b + taps - 1], done), out_f)
            y = ops.matmul(cols, w2).view(n, (b - a + taps - 1) * out_f * taps, self.o)
            # out[u, v] = sum over taps m of y[(u + m, v, m)]: gathered tap-major, summed by a product with ones
            # (MindSpore's CPU ReduceSum over a middle axis is ~8x slower).
            m, u, v = np.meshgrid(np.arange(taps), np.arange(b - a), np.arange(out_f), indexing="ij")
            t_idx = Tensor((((u + m) * out_f + v) * taps + m).reshape(-1), mstype.int32)
            shifted = ops.gather(y, t_idx, 1).view(n, taps, -1)
            done = ops.matmul(ops.ones((n, 1, taps), y.dtype), shifted).view(n, b - a, out_f, self.o)
            outs.append(done)
        return ops.concat(outs, axis=1) if len(outs) > 1 else outs[0]

    def _backward_chunk(self, xf, w2, padded, done, a: int, b: int, out_f: int) -> tuple:
        """Weight gradient (kF*s*C, taps*O) and input gradient (N, b - a, F, s*C) of folded input steps [a, b)."""
        n, _, f, _ = xf.shape
        taps, o = self.taps, self.o
        # y's row (t, v, m) received the output gradient of step t - m (zero rows pad both ends).
        tt, v, m = np.meshgrid(np.arange(a, b), np.arange(out_f), np.arange(taps), indexing="ij")
        dy_idx = Tensor(((tt - m + taps - 1) * out_f + v).reshape(-1), mstype.int32)
        dy = ops.gather(ops.depend(padded, done), dy_idx, 1).view(-1, taps * o)
        # Rebuilt after dy exists: the depend also keeps graph optimisation from merging it with the
        # forward's copy, which would hold that copy alive through the whole backward pass.
        dw2 = self.matmul_ta(self._cols(ops.depend(xf[:, a:b], dy), out_f), dy)
        if not self.input_grad:
            return dw2, dw2
        dcols = self.matmul_tb(dy, w2).view(-1, self.k // self.kf)  # rows (n, t, v, i), columns (p, c)
        # Scatter-add the gathered frequency rows back: row (n, t, v, i) goes to input row (n, t, v * sF + i).
        # One segment sum over rows in place; the first version moved the frequency axis to the front and back
        # around it, two transposes that cost twice the sum.
        index = (np.arange(n * (b - a))[:, None] * f + self._freq_rows(out_f)[None, :]).reshape(-1)
        rows = ops.unsorted_segment_sum(dcols, Tensor(index, mstype.int32), n * (b - a) * f)
        return dw2, rows.view(n, b - a, f, self.k // self.kf)

    def bprop(self, x: Tensor, w: Tensor, out: Tensor, dout: Tensor) -> tuple:
        n, t, f, out_f, _, steps, chunk = self._sizes(x)
        xf, w2, taps, o = self._fold_time(x, steps), self._fold_weight(w), self.taps, self.o
        edge = ops.zeros((n, taps - 1, out_f, o), dout.dtype)
        padded = ops.concat((edge, dout, edge), axis=1).view(n, -1, o)
        dw2 = ops.zeros((self.k, taps * o), w.dtype)
        dxs = []
        done = padded
        for a in range(0, steps, chunk):
            b = a + chunk if a + chunk < steps else steps
            part, done = self._backward_chunk(xf, w2, padded, done, a, b, out_f)
            dw2 = dw2 + part
            dxs.append(done)
        dw = self._unfold_weight_grad(dw2)
        if not self.input_grad:
            return ops.zeros_like(x), dw
        dx = ops.concat(dxs, axis=1) if len(dxs) > 1 else dxs[0]
        c, st = self.c, self.st
        if st > 1:
            dx = dx.view(n, steps, f, st, c).transpose(0, 1, 3, 2, 4).view(n, steps * st, f, c)
        if steps * st > t:
            dx = dx[:, :t]
        elif steps * st < t:
            dx = ops.concat((dx, ops.zeros((n, t - steps * st, f, c), dx.dtype)), axis=1)
        return dx, dw


class MatmulConv2d(nn.Cell):
    """A bias-free Conv2d computed with one matrix product, time-major channels-last; weight (out, in, kF, kT).

    MindSpore's CPU convolution falls back to oneDNN's reference kernel for these shapes on AVX-512 hosts
    (see bench/conv_speed.py) while its matmul runs near peak. In graph mode every intermediate tensor costs
    memory, so the formulation keeps them few and small, and its own backward keeps none of them:
      1. the time stride is folded into the channels (frames t*s+p -> channel block p of step t), leaving a
         stride-1 convolution with ceil(kT / s) taps (free for s = 1, an input-sized copy otherwise);
      2. frequency taps are gathered into the contraction: (N, T, F' * kF, s*C), already in matmul order;
      3. one product gives every time tap's contribution: (N*T*F', kF*s*C) @ (kF*s*C, taps*O);
      4. one gather picks tap m at step u + m, and a sum over taps gives the output.
    Input (N, T, F, C), already padded -> (N, T', F', O). `input_grad=False` (the first convolution, whose
    input is data) skips the input gradient.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple, stride: tuple, input_grad: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel, stride
        kf, kt = kernel
        std = np.sqrt(2.0 / (kf * kt * out_channels))  # the model zoo's He-style init
        init = np.random.normal(0, std, (out_channels, in_channels, kf, kt)).astype(np.float32)
        self.weight = Parameter(Tensor(init), name="weight")
        self.fn = _MatmulConvFn(in_channels, out_channels, kernel, stride, input_grad)

    def construct(self, x: Tensor) -> Tensor:
        return self.fn(x, self.weight)


class ZeroPad(nn.Cell):
    """Zeros around the time and frequency axes of (N, T, F, C): (N, T + 2 * time, F + 2 * freq, C).

    Two concatenations with zero blocks: MindSpore's CPU Pad kernel took 50-70 ms for the second convolution's
    input at 4 x 10 s (one pass of a training step's micro-batch), the concatenations 2-3 ms, forward and
    backward alike. Both Pad and concatenation export to ONNX; ops.pad (PadV3) does not.
    """

    def __init__(self, time: int, freq: int) -> None:
        super().__init__()
        self.time, self.freq = time, freq

    def construct(self, x: Tensor) -> Tensor:
        n, t, f, c = x.shape
        if self.freq:
            side = ops.zeros((n, t, self.freq, c), x.dtype)
            x = ops.concat((side, x, side), axis=2)
        if self.time:
            edge = ops.zeros((n, self.time, f + 2 * self.freq, c), x.dtype)
            x = ops.concat((edge, x, edge), axis=1)
        return x


class MaskConv(nn.Cell):
    """The two-convolution front end with padding masks, time-major channels-last inside.

    Input (N, 1, F, T), lengths (N,) -> (N, T', F'', 32), lengths (N,) i32.
    """

    def __init__(self) -> None:
        super().__init__()
        (k1f, s1f, p1f), (k2f, s2f, p2f) = shapes.CONV_FREQ
        (k1t, s1t, p1t), (k2t, s2t, p2t) = shapes.CONV_TIME
        ch = shapes.CONV_CHANNELS
        self.pad1 = ZeroPad(p1t, p1f)
        self.conv1 = MatmulConv2d(1, ch, (k1f, k1t), (s1f, s1t), input_grad=False)
        self.bn1 = MaskedBatchNorm2d(ch)
        self.pad2 = ZeroPad(p2t, p2f)
        self.conv2 = MatmulConv2d(ch, ch, (k2f, k2t), (s2f, s2t))
        self.bn2 = MaskedBatchNorm2d(ch)
        self.tanh = nn.Tanh()

    def _block(self, x, lengths, pad, conv, bn, time_conv):
        kernel, stride, padding = time_conv
        x = conv(pad(x))
        # Integer conv formula: upstream divided floats, which rounds the other way for some lengths.
        lengths = ops.floor_div(lengths + 2 * padding - kernel, stride) + 1
        mask = sequence_mask(lengths, x.shape[1]).view(x.shape[0], x.shape[1], 1, 1)
        full = spread(mask, x)
        x = self.tanh(bn(x * full, mask)) * full
        return x, lengths

    def construct(self, x: Tensor, lengths: Tensor):
        x = x.transpose(0, 3, 2, 1)  # (N, T, F, 1)
        x, lengths = self._block(x, lengths, self.pad1, self.conv1, self.bn1, shapes.CONV_TIME[0])
        x, lengths = self._block(x, lengths, self.pad2, self.conv2, self.bn2, shapes.CONV_TIME[1])
        return x, lengths


class _RecomputedLSTM(nn.Cell):
    """One direction of an LSTM layer whose backward pass recomputes the forward instead of keeping it.

    The fused LSTM kernel's training workspace (every gate at every step) is what the backward needs; kept
    from the forward pass it costs about T x N x 4H floats per direction and layer until the backward
    reaches that layer. Recomputing it there costs one more forward pass of the layer and keeps only the
    layer's input. Same numbers either way (the kernel is deterministic).
    Input (T, N, I), h0/c0 (1, N, H), flat weights (w_ih, w_hh, b_ih + b_hh) as the CPU kernel takes them.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = ops.LSTM(input_size, hidden_size, 1, True, False, 0.0)
        self.lstm_grad = LSTMGrad(input_size, hidden_size, 1, True, False, 0.0)
        # The forward pass needs no workspace at all: an inference-mode kernel writes none (a training-mode
        # one writes every gate at every step, and the graph holds that output to its end).
        self.forward_only = ops.LSTM(input_size, hidden_size, 1, True, False, 0.0)
        self.forward_only.add_prim_attr("is_training", False)

    def construct(self, x: Tensor, h: Tensor, c: Tensor, w: Tensor) -> Tensor:
        return self.forward_only(x, h, c, w)[0]

    def bprop(self, x: Tensor, h: Tensor, c: Tensor, w: Tensor, out: Tensor, dout: Tensor) -> tuple:
        # The depend orders the recomputation after the output gradient exists (and keeps it from being
        # merged with the forward's call, which would keep the workspace alive after all).
        y, hy, cy, reserve, _ = self.lstm(ops.depend(x, dout), h, c, w)
        dx, dh, dc, dw = self.lstm_grad(x, h, c, w, y, hy, cy, dout, ops.zeros_like(hy), ops.zeros_like(cy), reserve)
        return dx, dh, dc, dw


class BiLSTM(nn.LSTM):
    """One bidirectional LSTM layer whose two directions are summed; parameter names are nn.LSTM's.

    With `masked`, the backward direction reverses each sequence within its own length (ReverseSequence), so
    it starts at the clip's last real frame, and outputs past the length are zeroed. Both directions run the
    fused LSTM kernel (nn.LSTM's own seq_length path is a slow step-by-step loop). When the cell is not training
    (evaluation) or with `recompute`, the forward pass writes no LSTM workspace and a backward pass, if one is
    taken, recomputes it (see _RecomputedLSTM): eval memory stays low and gradients stay right in eval mode.
    Input (T, N, I), lengths (N,) -> (T, N, H).
    """

    def __init__(
        self, input_size: int, hidden_size: int, masked: bool = True, recompute: bool = False, kernel: str = "project"
    ) -> None:
        super().__init__(input_size=input_size, hidden_size=hidden_size, bidirectional=True, has_bias=True)
        self.masked = masked
        self.recompute = recompute
        # Evaluation and `recompute`: the inference-mode kernel forward, the backward (if any) recomputed.
        self.recomputed = _RecomputedLSTM(input_size, hidden_size)
        # Training: the project's kernel (src/lstm_kernel.py) where it builds, else MindSpore's fused one.
        library = lstm_kernel.library() if kernel == "project" else None
        self.project = lstm_kernel.ProjectLSTM(library) if library else None

    def _direction(self, x: Tensor, d: int) -> Tensor:
        """Run direction d (0 forward, 1 backward weights) over x (T, N, I) from a zero state -> (T, N, H)."""
        w_ih, w_hh, b_ih, b_hh = self.w_ih_list[d], self.w_hh_list[d], self.b_ih_list[d], self.b_hh_list[d]
        if self.training and not self.recompute:
            if self.project is not None:
                return self.project(x, w_ih, w_hh, b_ih + b_hh)[0]
            zeros = ops.zeros((x.shape[1], self.hidden_size), x.dtype)
            return self.rnn(x, (zeros, zeros), None, w_ih, w_hh, b_ih, b_hh)[0]
        zeros = ops.zeros((1, x.shape[1], self.hidden_size), x.dtype)
        # The CPU kernel's flat weight layout, as nn.LSTM builds it: w_ih, w_hh, then the two biases summed.
        w = ops.concat((w_ih.view(-1, 1, 1), w_hh.view(-1, 1, 1), (b_ih + b_hh).view(-1, 1, 1)))
        return self.recomputed(x, zeros, zeros, w)

    def construct(self, x: Tensor, lengths: Tensor) -> Tensor:
        forward = self._direction(x, 0)
        if self.masked:
            backward = self.reverse_sequence(self._direction(self.reverse_sequence(x, lengths), 1), lengths)
            mask = sequence_mask(lengths, x.shape[0]).T.view(x.shape[0], x.shape[1], 1)
            return (forward + backward) * spread(mask, forward)
        return forward + self.reverse(self._direction(self.reverse(x), 1))


class BatchRNN(nn.Cell):
    """A stack of summed bidirectional LSTMs, held as `lstms` (names RNN.lstms.{i}.weight_ih_l0 ...)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        masked: bool = True,
        recompute: bool = False,
        kernel: str = "project",
    ) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.lstms = nn.CellList([BiLSTM(size, hidden_size, masked, recompute, kernel) for size in sizes])

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
        recompute_rnn: training recomputes each LSTM's forward in the backward pass instead of keeping its
            workspace (less memory, one more LSTM forward per step; the same numbers).
        lstm_kernel: ModelConfig.lstm_kernel: "project" trains with src/lstm_kernel.py's kernel where it
            builds (MindSpore's otherwise), "mindspore" always with MindSpore's fused kernel.
    """

    def __init__(
        self,
        labels: list[str],
        rnn_hidden_size: int = 1024,
        nb_layers: int = 5,
        sample_rate: int = 16000,
        window_size: float = 0.02,
        masked: bool = True,
        recompute_rnn: bool = False,
        lstm_kernel: str = "project",
    ) -> None:
        super().__init__()
        self.masked = masked
        self.conv = MaskConv()
        rnn_input_size = shapes.rnn_input_size(sample_rate, window_size)
        self.RNN = BatchRNN(rnn_input_size, rnn_hidden_size, nb_layers, masked, recompute_rnn, lstm_kernel)
        self.fc = SequenceWise(nn.Dense(rnn_hidden_size, len(labels), has_bias=False))

    def construct(self, x: Tensor, lengths: Tensor):
        lengths = lengths.astype(mstype.int32)
        x, out_lengths = self.conv(x, lengths)  # (N, T', F'', C)
        n, t, f, c = x.shape
        x = x.transpose(1, 0, 3, 2).view(t, n, c * f)  # (T', N, C*F''), feature c*F''+f as upstream
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
    return DeepSpeechModel(
        labels,
        model.hidden_size,
        model.hidden_layers,
        spect.sample_rate,
        spect.window_size,
        recompute_rnn=model.recompute_rnn,
        lstm_kernel=model.lstm_kernel,
    )
