"""The compatibility contract: model-zoo parameter names/shapes, and the numbers against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore

H = 1024


def contract_shapes() -> dict[str, tuple]:
    """The official model zoo's parameter list, written out independently of our code."""
    shapes = {"conv.conv1.weight": (32, 1, 41, 11), "conv.conv2.weight": (32, 32, 21, 11), "fc.module.weight": (29, H)}
    for bn in ("bn1", "bn2"):
        for name in ("gamma", "beta", "moving_mean", "moving_variance"):
            shapes[f"conv.{bn}.{name}"] = (32,)
    for layer in range(5):
        for suffix in ("", "_reverse"):
            p = f"RNN.lstms.{layer}."
            shapes[p + "weight_ih_l0" + suffix] = (4 * H, 1312 if layer == 0 else H)
            shapes[p + "weight_hh_l0" + suffix] = (4 * H, H)
            shapes[p + "bias_ih_l0" + suffix] = (4 * H,)
            shapes[p + "bias_hh_l0" + suffix] = (4 * H,)
    return shapes


def random_official_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in contract_shapes().items():
        if name.endswith("moving_variance"):
            weights[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif "conv" in name and "weight" in name:
            weights[name] = rng.normal(0, 0.05, shape).astype(np.float32)
        else:
            weights[name] = rng.uniform(-0.05, 0.05, shape).astype(np.float32)
    return weights


# ---- an independent NumPy implementation of the official architecture (eval mode) ----
def np_conv2d(x, w, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    return np.einsum("nchwij,ocij->nohw", win, w, optimize=True)


def np_bn(x, w, name):
    g, b, m, v = (
        w[f"conv.{name}.{k}"][None, :, None, None] for k in ("gamma", "beta", "moving_mean", "moving_variance")
    )
    return (x - m) / np.sqrt(v + 1e-5) * g + b


def np_lstm(x, w_ih, w_hh, b_ih, b_hh):
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h = np.zeros((x.shape[1], w_hh.shape[1]))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[0]):
        i, f, g, o = np.split(x[t] @ w_ih.T + h @ w_hh.T + b_ih + b_hh, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def np_deepspeech(x, w):
    """x (N, 1, 161, T) -> logits (T', N, 29)."""
    x = np.tanh(np_bn(np_conv2d(x.astype(np.float64), w["conv.conv1.weight"], (2, 2), (20, 5)), w, "bn1"))
    x = np.tanh(np_bn(np_conv2d(x, w["conv.conv2.weight"], (2, 1), (10, 5)), w, "bn2"))
    n, c, f, t = x.shape
    x = x.reshape(n, c * f, t).transpose(2, 0, 1)
    for layer in range(5):
        p = f"RNN.lstms.{layer}."
        fw = np_lstm(x, *(w[p + k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")))
        keys = ("weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse")
        bw = np_lstm(x[::-1], *(w[p + k] for k in keys))[::-1]
        x = fw + bw
    return x @ w["fc.module.weight"].T


@pytest.fixture(scope="module")
def official_ckpt(tmp_path_factory):
    weights = random_official_weights()
    path = tmp_path_factory.mktemp("official") / "official.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()], str(path))
    return path, weights


@pytest.fixture(scope="module")
def full_net(labels):
    from src.deepspeech2 import DeepSpeechModel

    return DeepSpeechModel(labels, H, 5)


def test_parameter_names_and_shapes_match_the_contract(full_net):
    ours = {p.name: tuple(p.shape) for p in full_net.get_parameters()}
    assert ours == contract_shapes()
    trainable = sum(int(np.prod(p.shape)) for p in full_net.trainable_params())
    assert trainable == 86_608_096


def test_official_checkpoint_loads_and_matches_numpy_reference(full_net, official_ckpt, labels):
    from src.checkpoint import load_network_weights

    path, weights = official_ckpt
    report = load_network_weights(full_net, path)
    assert (report.missing, report.unexpected, report.mismatched) == ([], [], [])
    assert report.loaded == len(contract_shapes())
    full_net.set_train(False)
    x = np.random.default_rng(1).standard_normal((2, 1, 161, 48)).astype(np.float32)
    lengths = np.array([48, 48], np.int32)
    logits, out_lengths = full_net(ms.Tensor(x), ms.Tensor(lengths))
    ref = np_deepspeech(x, weights)
    assert logits.shape == ref.shape == (24, 2, 29)
    assert list(out_lengths.asnumpy()) == [24, 24]
    np.testing.assert_allclose(logits.asnumpy(), ref, atol=1e-4, rtol=0)


def test_training_checkpoint_with_adam_moments_loads(full_net, official_ckpt, tmp_path):
    from src.checkpoint import load_network_weights

    _, weights = official_ckpt
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in weights.items()]
    entries += [
        {"name": f"moment{i}.{k}", "data": ms.Tensor(np.zeros_like(v))} for i in (1, 2) for k, v in weights.items()
    ]
    entries.append({"name": "global_step", "data": ms.Tensor(np.array([7], np.int32))})
    path = tmp_path / "train.ckpt"
    ms.save_checkpoint(entries, str(path))
    report = load_network_weights(full_net, path)
    assert report.loaded == len(weights) and report.optimizer_entries == 2 * len(weights) + 1


def test_mismatched_checkpoint_is_reported_not_ignored(labels, official_ckpt):
    from src.checkpoint import CheckpointError, load_network_weights
    from src.deepspeech2 import DeepSpeechModel

    small = DeepSpeechModel(labels, 16, 5)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_network_weights(small, official_ckpt[0])


def test_checkpoint_we_write_has_exactly_the_official_names(full_net, tmp_path):
    from src.callback import CheckpointSaver
    from src.checkpoint import load_param_dict
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import TrainOneStep, build_optimizer

    opt = build_optimizer(full_net, 3e-4, (0.9, 0.999), 1e-8, 1e-5)
    cell = TrainOneStep(NetWithLossClass(full_net, 28), opt, 1024, 400)
    path = CheckpointSaver(tmp_path, "DeepSpeech", 2).save(cell, 0, 4, 5)
    names = set(load_param_dict(path))
    expected = set(contract_shapes())
    trainable = {p.name for p in full_net.trainable_params()}
    assert expected <= names
    assert {n for n in names if n.startswith("moment1.")} == {f"moment1.{n}" for n in trainable}
    assert {n for n in names if n.startswith("moment2.")} == {f"moment2.{n}" for n in trainable}
    extra = names - expected - {f"moment{i}.{n}" for i in (1, 2) for n in trainable}
    assert extra <= {
        "global_step",
        "learning_rate",
        "beta1_power",
        "beta2_power",
        "skipped_steps",
        "epoch_num",
        "step_num",
        "global_step_num",
    }


def test_checkpoints_we_write_parse_as_plain_protobufs_with_the_official_names(labels, tmp_path):
    """The model zoo's MindSpore predates CRC trailers: our files must parse as a bare Checkpoint protobuf."""
    import hashlib

    from google.protobuf.message import DecodeError
    from mindspore.train.checkpoint_pb2 import Checkpoint

    from src.callback import CheckpointSaver
    from src.checkpoint import save_atomic
    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass
    from src.digest import digest_path
    from src.train_step import TrainOneStep, build_optimizer

    net = DeepSpeechModel(labels, 32, 5)  # the official layer count, tiny width: the names do not depend on it
    cell = TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 3e-4, (0.9, 0.999), 1e-8, 1e-5), 1024, 400)
    periodic = CheckpointSaver(tmp_path, "DeepSpeech", 2).save(cell, 0, 4, 5)
    best = save_atomic(cell, tmp_path / "DeepSpeech-best.ckpt", {"epoch_num": 0, "val_wer": 50.0})
    for path in (periodic, best):
        data = path.read_bytes()
        proto = Checkpoint()
        proto.ParseFromString(data)
        names = {value.tag for value in proto.value}
        assert set(contract_shapes()) <= names, path.name
        assert digest_path(path).read_text() == f"{hashlib.sha256(data).hexdigest()}  {path.name}\n"
    trailer = tmp_path / "crc.ckpt"  # what Issue 12's crc_check=True wrote: the plain parser refuses it
    ms.save_checkpoint(net, str(trailer), crc_check=True)
    with pytest.raises(DecodeError):
        Checkpoint().ParseFromString(trailer.read_bytes())


def test_zero_pad_is_numpys_constant_pad_and_its_gradient_the_inner_slice():
    """The convolutions' input padding (ZeroPad, concatenations in place of MindSpore's slow CPU Pad)."""
    from mindspore import Tensor, nn, ops

    from src.deepspeech2 import ZeroPad

    class Weighted(nn.Cell):
        def __init__(self, pad, weight):
            super().__init__()
            self.pad, self.weight = pad, Tensor(weight)

        def construct(self, v):
            return (self.pad(v) * self.weight).sum()

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 5, 3)).astype(np.float32)
    weight = rng.standard_normal((2, 7 + 2 * 4, 5 + 2 * 2, 3)).astype(np.float32)
    pad = ZeroPad(4, 2)
    np.testing.assert_array_equal(pad(Tensor(x)).asnumpy(), np.pad(x, ((0, 0), (4, 4), (2, 2), (0, 0))))
    grad = ops.GradOperation()(Weighted(pad, weight))(Tensor(x)).asnumpy()
    np.testing.assert_array_equal(grad, weight[:, 4:-4, 2:-2])
    only_time = ZeroPad(3, 0)(Tensor(x)).asnumpy()
    np.testing.assert_array_equal(only_time, np.pad(x, ((0, 0), (3, 3), (0, 0), (0, 0))))
