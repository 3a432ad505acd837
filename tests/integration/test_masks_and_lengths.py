"""Padding masks and the output-length formula, on the real MindSpore network."""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def net(labels):
    from src.deepspeech2 import DeepSpeechModel

    np.random.seed(3)
    model = DeepSpeechModel(labels, 64, 3)
    # Non-trivial batch-norm statistics so that padding would show if it leaked.
    for bn in (model.conv.bn1, model.conv.bn2):
        bn.moving_mean.set_data(ms.Tensor(np.random.uniform(-0.5, 0.5, 32).astype(np.float32)))
        bn.moving_variance.set_data(ms.Tensor(np.random.uniform(0.5, 2.0, 32).astype(np.float32)))
    model.set_train(False)
    return model


def test_same_clip_alone_and_batched_with_a_three_times_longer_clip(net):
    rng = np.random.default_rng(0)
    short = rng.standard_normal((161, 70)).astype(np.float32)
    long = rng.standard_normal((161, 210)).astype(np.float32)
    alone, alone_len = net(ms.Tensor(short[None, None]), ms.Tensor(np.array([70], np.int32)))
    batch = np.zeros((2, 1, 161, 210), np.float32)
    batch[0, 0, :, :70] = short
    batch[1, 0] = long
    both, both_len = net(ms.Tensor(batch), ms.Tensor(np.array([70, 210], np.int32)))
    n = int(alone_len.asnumpy()[0])
    assert n == 35 and list(both_len.asnumpy()) == [35, 105]
    np.testing.assert_allclose(both.asnumpy()[:n, 0], alone.asnumpy()[:n, 0], atol=1e-4, rtol=0)


def test_unmasked_network_would_depend_on_padding(labels, net):
    """The control: without masks the same comparison differs, so the test above can fail."""
    from src.deepspeech2 import DeepSpeechModel

    plain = DeepSpeechModel(labels, 64, 3, masked=False)
    ms.load_param_into_net(plain, {p.name: p for p in net.get_parameters()})
    plain.set_train(False)
    rng = np.random.default_rng(0)
    short = rng.standard_normal((1, 1, 161, 70)).astype(np.float32)
    padded = np.zeros((1, 1, 161, 210), np.float32)
    padded[..., :70] = short
    a = plain(ms.Tensor(short), ms.Tensor(np.array([70], np.int32)))[0].asnumpy()
    b = plain(ms.Tensor(padded), ms.Tensor(np.array([70], np.int32)))[0].asnumpy()
    assert np.abs(a - b[:35]).max() > 1e-3


@pytest.mark.parametrize("frames", [1, 2, 3, 10, 11, 64, 99, 128, 257])
def test_output_length_formula_matches_conv_output(net, frames):
    from src import shapes

    x = np.random.default_rng(frames).standard_normal((1, 1, 161, frames)).astype(np.float32)
    conv_out, lengths = net.conv(ms.Tensor(x), ms.Tensor(np.array([frames], np.int32)))
    assert conv_out.shape[1] == shapes.output_length(frames) == int(lengths.asnumpy()[0])  # (N, T', F'', C)
    assert conv_out.shape[2] == shapes.conv_out_freq(161) and conv_out.shape[3] == 32
    assert lengths.dtype == ms.int32


def test_lengths_of_every_clip_in_a_padded_batch_are_integer_formula(net):
    from src import shapes

    lengths = np.arange(1, 65, dtype=np.int32)
    x = np.zeros((len(lengths), 1, 161, 64), np.float32)
    _, out = net.conv(ms.Tensor(x), ms.Tensor(lengths))
    assert list(out.asnumpy()) == [shapes.output_length(int(n)) for n in lengths]


@pytest.mark.parametrize("chunk_bytes", [64 * 2**20, 20_000], ids=["one-chunk", "many-chunks"])
@pytest.mark.parametrize(
    ("cin", "kernel", "stride", "shape"),
    [(1, (41, 11), (2, 2), (2, 1, 201, 41)), (32, (21, 11), (2, 1), (2, 32, 101, 30))],
)
def test_matmul_convolution_matches_nn_conv2d_values_and_gradients(
    cin, kernel, stride, shape, chunk_bytes, monkeypatch
):
    from mindspore import Tensor, nn, ops

    from src import deepspeech2
    from src.deepspeech2 import MatmulConv2d

    monkeypatch.setattr(deepspeech2, "CONV_CHUNK_BYTES", chunk_bytes)

    class Grads(nn.Cell):
        def __init__(self, net, probe):
            super().__init__()
            self.net, self.probe, self.params = net, probe, net.trainable_params()
            self.grad = ops.GradOperation(get_all=True, get_by_list=True)

        def construct(self, x):
            return self.grad(lambda y: (self.net(y) * self.probe).sum(), self.params)(x)

    def ours_layout(a):  # (N, C, F, T) <-> (N, T, F, C), its own inverse
        return a.transpose(0, 3, 2, 1)

    ref = nn.Conv2d(cin, 32, kernel, stride, pad_mode="valid")
    ours = MatmulConv2d(cin, 32, kernel, stride)
    ours.weight.set_data(ref.weight.data)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    out = ref(Tensor(x)).asnumpy()
    np.testing.assert_allclose(ours_layout(ours(Tensor(ours_layout(x))).asnumpy()), out, atol=1e-4)
    probe = rng.standard_normal(out.shape).astype(np.float32)
    (dx_ref,), (dw_ref,) = Grads(ref, Tensor(probe))(Tensor(x))
    (dx,), (dw,) = Grads(ours, Tensor(ours_layout(probe)))(Tensor(ours_layout(x)))
    np.testing.assert_allclose(ours_layout(dx.asnumpy()), dx_ref.asnumpy(), atol=1e-4)
    np.testing.assert_allclose(dw.asnumpy(), dw_ref.asnumpy(), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("masked", [True, False])
def test_inference_mode_lstm_gives_the_training_kernels_outputs_and_gradients(masked):
    """Evaluation runs the fused LSTM without its training workspace (its backward, if one is taken, recomputes
    it): outputs and gradients must be the training kernel's."""
    from mindspore import Tensor, nn, ops

    from src.deepspeech2 import BiLSTM

    class OutAndGrads(nn.Cell):
        def __init__(self, layer):
            super().__init__()
            self.layer, self.params = layer, layer.trainable_params()
            self.grad = ops.GradOperation(get_all=True, get_by_list=True, sens_param=True)

        def construct(self, x, lengths, sens):
            return self.layer(x, lengths), self.grad(self.layer, self.params)(x, lengths, sens)

    np.random.seed(4)
    layer = BiLSTM(24, 16, masked=masked)
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal((30, 3, 24)).astype(np.float32))
    lengths = Tensor(np.array([30, 17, 5], np.int32))
    sens = Tensor(rng.standard_normal((30, 3, 16)).astype(np.float32))
    results = {}
    for training in (True, False):
        layer.set_train(training)
        out, ((dx, _), dparams) = OutAndGrads(layer)(x, lengths, sens)
        results[training] = [out.asnumpy(), dx.asnumpy()] + [g.asnumpy() for g in dparams]
    assert np.abs(results[True][0]).max() > 0.01 and np.abs(results[True][1]).max() > 0.001
    for trained, evaluated in zip(results[True], results[False]):
        assert np.isfinite(evaluated).all()
        np.testing.assert_allclose(evaluated, trained, rtol=1e-4, atol=1e-6)


def test_batch_norm_gradients_equal_autodiffs():
    """MaskedBatchNorm2d's own backward pieces (_SpreadChannels, _ChannelAffine: sums over positions as products
    with ones) give autodiff's gradients for x, gamma and beta, padded frames included."""
    from mindspore import Tensor, nn, ops

    from src.deepspeech2 import MaskedBatchNorm2d, spread

    class PlainSpread(nn.Cell):
        def construct(self, v, like):
            return spread(v, like)

    class Loss(nn.Cell):
        def __init__(self, bn, weight):
            super().__init__()
            self.bn, self.weight = bn, Tensor(weight)

        def construct(self, x, mask):
            return (self.bn(x, mask) * self.weight).sum()

    rng = np.random.default_rng(7)
    n, t, f, c = 3, 11, 5, 4
    lengths = np.array([11, 7, 4])
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float32).reshape(n, t, 1, 1)
    x = rng.standard_normal((n, t, f, c)).astype(np.float32) * mask
    weight = rng.standard_normal((n, t, f, c)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.uniform(-0.5, 0.5, c).astype(np.float32)
    grads = []
    for plain in (False, True):
        bn = MaskedBatchNorm2d(c)
        bn.gamma.set_data(Tensor(gamma))
        bn.beta.set_data(Tensor(beta))
        if plain:
            bn.spread_mean = PlainSpread()
        bn.set_train(True)
        net = Loss(bn, weight)
        grad = ops.GradOperation(get_all=True, get_by_list=True)(net, net.trainable_params())
        (dx, _), (dgamma, dbeta) = grad(Tensor(x), Tensor(mask))
        grads.append([dx.asnumpy(), dgamma.asnumpy(), dbeta.asnumpy()])
    for name, ours, autodiff in zip(("x", "gamma", "beta"), *grads):
        assert np.abs(autodiff).max() > 0, name
        np.testing.assert_allclose(ours, autodiff, rtol=1e-5, atol=1e-6 * np.abs(autodiff).max(), err_msg=name)
