"""The project's CPU LSTM kernel (src/lstm_kernel.py, src/kernels/lstm_cpu.cc) against MindSpore's fused kernel."""

from __future__ import annotations

import logging

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore

from mindspore import Tensor, nn, ops  # noqa: E402


class LossAndGrads(nn.Cell):
    def __init__(self, loss, params):
        super().__init__()
        self.loss, self.params = loss, params
        self.grad = ops.GradOperation(get_by_list=True)

    def construct(self, *inputs):
        return self.loss(*inputs), self.grad(self.loss, self.params)(*inputs)


def test_the_kernel_builds_here():
    """setup.sh installs g++; a checkout where the kernel does not build trains on MindSpore's (more memory)."""
    from src import lstm_kernel

    assert lstm_kernel.library() is not None


# hidden 32: plain products only (no whole 64-column panel); 80: a panel plus a plain rest; 64: one panel.
# Clips 5 = a block of 4 + 1, 7 = 4 + 3: the panel product's row blocks.
@pytest.mark.parametrize("hidden, clips", [(32, 3), (80, 5), (64, 7)])
def test_project_kernel_gives_mindsporess_loss_and_gradients(labels, hidden, clips):
    """Training with ModelConfig.lstm_kernel "project" computes what MindSpore's fused kernel computes: the
    loss and every gradient to 1e-5 of its scale, over masked clips of different lengths, two layers."""
    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass

    ours = DeepSpeechModel(labels, hidden, 2, lstm_kernel="project")
    theirs = DeepSpeechModel(labels, hidden, 2, lstm_kernel="mindspore")
    assert all(lstm.project is not None for lstm in ours.RNN.lstms)
    assert all(lstm.project is None for lstm in theirs.RNN.lstms)
    ms.load_param_into_net(theirs, {p.name: p for p in ours.get_parameters()})
    ours.set_train(True)
    theirs.set_train(True)
    rng = np.random.default_rng(2)
    lengths = np.array([123, 80, 37, 101, 64, 90, 45][:clips], np.int32)
    features = rng.standard_normal((clips, 1, 161, 123)).astype(np.float32)
    for i, n in enumerate(lengths):
        features[i, :, :, n:] = 0
    inputs = (
        Tensor(features),
        Tensor(lengths),
        Tensor(rng.integers(0, 28, (clips, 10)).astype(np.int32)),
        Tensor(np.array([10, 7, 3, 9, 5, 8, 4][:clips], np.int32)),
    )
    blank = len(labels) - 1
    loss_a, grads_a = LossAndGrads(NetWithLossClass(theirs, blank), theirs.trainable_params())(*inputs)
    loss_b, grads_b = LossAndGrads(NetWithLossClass(ours, blank), ours.trainable_params())(*inputs)
    assert float(loss_b.asnumpy()) == pytest.approx(float(loss_a.asnumpy()), rel=1e-6)
    for param, a, b in zip(theirs.trainable_params(), grads_a, grads_b):
        a, b = a.asnumpy(), b.asnumpy()
        assert np.abs(a).max() > 0, param.name  # every parameter really gets a gradient
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=param.name)


def test_eval_mode_outputs_do_not_depend_on_the_kernel_setting(labels):
    """Evaluation runs MindSpore's inference kernel whatever lstm_kernel says (exports and eval unchanged)."""
    from src.deepspeech2 import DeepSpeechModel

    ours = DeepSpeechModel(labels, 32, 1, lstm_kernel="project")
    theirs = DeepSpeechModel(labels, 32, 1, lstm_kernel="mindspore")
    ms.load_param_into_net(theirs, {p.name: p for p in ours.get_parameters()})
    ours.set_train(False)
    theirs.set_train(False)
    x = Tensor(np.random.default_rng(3).standard_normal((2, 1, 161, 50)).astype(np.float32))
    lengths = Tensor(np.array([50, 31], np.int32))
    np.testing.assert_array_equal(ours(x, lengths)[0].asnumpy(), theirs(x, lengths)[0].asnumpy())


def test_a_kernel_that_cannot_be_built_falls_back_with_one_warning(labels, tmp_path, monkeypatch, caplog):
    from src import lstm_kernel
    from src.deepspeech2 import DeepSpeechModel

    monkeypatch.setenv("DS2_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(lstm_kernel.KernelUnavailable, match="compiling lstm_cpu.cc failed|no-such-compiler"):
        lstm_kernel.build()
    lstm_kernel.library.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="src.lstm_kernel"):
            net = DeepSpeechModel(labels, 16, 2)
        assert all(lstm.project is None for lstm in net.RNN.lstms)  # MindSpore's kernels, still trainable
        warnings = [r for r in caplog.records if "LSTM kernel is not available" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        lstm_kernel.library.cache_clear()


def test_lstm_kernel_setting_is_validated():
    from src.config import ModelConfig, validate_model

    validate_model(ModelConfig(lstm_kernel="mindspore"))
    with pytest.raises(ValueError, match="lstm_kernel"):
        validate_model(ModelConfig(lstm_kernel="cudnn"))


def test_inference_builds_no_kernel(labels, tmp_path, monkeypatch):
    """eval.py, transcribe.py, export.py and the server load through load_predictor: MindSpore's kernels only,
    so a machine without a compiler evaluates without a build attempt or a warning."""
    import mindspore as ms

    from src import config as C
    from src import lstm_kernel
    from src.deepspeech2 import DeepSpeechModel
    from src.inference import load_predictor

    ckpt = tmp_path / "tiny.ckpt"
    ms.save_checkpoint(DeepSpeechModel(labels, 16, 1), str(ckpt))
    monkeypatch.setattr(lstm_kernel, "library", lambda: pytest.fail("inference tried to build the kernel"))
    net, _ = load_predictor(str(ckpt), labels, C.SpectConfig(), C.ModelConfig(hidden_size=16, hidden_layers=1))
    assert all(lstm.project is None for lstm in net.RNN.lstms)


def _cpu_has(flag: str) -> bool:
    from src.lstm_kernel import cpu_flags

    return flag in cpu_flags().split()


@pytest.mark.skipif(not _cpu_has("avx2"), reason="the AVX2 variant needs an x86 CPU with AVX2")
@pytest.mark.parametrize("clips", [5, 6])  # row blocks 4 + 1 and 4 + 2
def test_avx2_build_gives_mindsporess_outputs_and_gradients(tmp_path, monkeypatch, clips):
    """The kernel is built for the CPU it runs on: on an AVX-512 host the default build takes the 64-column
    panels; the AVX2 build (16-column panels of 8-float vectors) must compute the same numbers."""
    from src import lstm_kernel

    path = lstm_kernel.build(tmp_path, ("-march=x86-64-v3",))
    monkeypatch.setenv(lstm_kernel.WHITE_LIST, str(tmp_path))
    frames, inputs, hidden = 9, 40, 48  # 48 = three 16-column panels
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((frames, clips, inputs)), rng.standard_normal((frames, clips, hidden))
    w_ih, w_hh = rng.standard_normal((4 * hidden, inputs)) * 0.2, rng.standard_normal((4 * hidden, hidden)) * 0.2
    b_ih, b_hh = rng.standard_normal(4 * hidden) * 0.1, rng.standard_normal(4 * hidden) * 0.1
    args = [Tensor(a.astype(np.float32)) for a in (x, w_ih, w_hh, b_ih, b_hh, dy)]

    class Ours(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = lstm_kernel.ProjectLSTM(str(path))

        def construct(self, x, w_ih, w_hh, b_ih, b_hh, dy):
            return (self.lstm(x, w_ih, w_hh, b_ih + b_hh)[0] * dy).sum()

    class Theirs(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(inputs, hidden, 1, has_bias=True)

        def construct(self, x, w_ih, w_hh, b_ih, b_hh, dy):
            zeros = ops.zeros((clips, hidden), x.dtype)
            return (self.lstm.rnn(x, (zeros, zeros), None, w_ih, w_hh, b_ih, b_hh)[0] * dy).sum()

    class ValueAndGrads(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net, self.grad = net, ops.GradOperation(get_all=True)

        def construct(self, x, w_ih, w_hh, b_ih, b_hh, dy):
            return self.net(x, w_ih, w_hh, b_ih, b_hh, dy), self.grad(self.net)(x, w_ih, w_hh, b_ih, b_hh, dy)

    (loss_a, grads_a), (loss_b, grads_b) = ValueAndGrads(Theirs())(*args), ValueAndGrads(Ours())(*args)
    assert float(loss_b.asnumpy()) == pytest.approx(float(loss_a.asnumpy()), rel=1e-5)
    for name, a, b in zip(("x", "w_ih", "w_hh", "b_ih", "b_hh"), grads_a, grads_b):
        a, b = a.asnumpy(), b.asnumpy()
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=name)


@pytest.mark.skipif(not _cpu_has("avx2"), reason="builds the AVX2 variant too")
def test_kernel_bench_builds_a_revision_and_both_instruction_sets_alike():
    """bench/lstm_kernel_speed.py: every build (this source and HEAD's, native and AVX2) runs and computes the
    same outputs and gradients; a mismatch here is a wrong kernel, whatever its speed."""
    from bench import lstm_kernel_speed

    args = lstm_kernel_speed.parse_args(
        ["--frames", "7", "--clips", "6", "--hidden", "80", "--input", "24", "--repeats", "1", "--baseline", "HEAD"]
    )
    results = lstm_kernel_speed.measure(args)
    assert [(r["march"], r["source"]) for r in results] == [
        ("native", "current"),
        ("native", "HEAD"),
        ("x86-64-v3", "current"),
        ("x86-64-v3", "HEAD"),
    ]
    for r in results:
        assert r["forward_s"] > 0 and r["backward_s"] > 0
        assert r["difference"] < 1e-5, (r["march"], r["source"], r["difference"])
        assert np.abs(r["outputs"]["dw_hh"]).max() > 0
