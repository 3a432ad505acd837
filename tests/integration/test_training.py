"""Loss cell, optimizer wiring (LR schedule, loss scale, clipping, weight decay, NaN skip) and the trainer."""

from __future__ import annotations

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore

from mindspore import Tensor, nn  # noqa: E402


def tiny_net(labels, hidden=16, layers=1, seed=0):
    from src.deepspeech2 import DeepSpeechModel

    np.random.seed(seed)
    return DeepSpeechModel(labels, hidden, layers)


def toy_batch(seed=0, n=2, frames=40):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 161, frames)).astype(np.float32)
    lengths = np.array([frames, frames * 3 // 4][:n], np.int32)
    x[1, :, :, lengths[1] :] = 0
    labels = np.zeros((n, frames // 2), np.int32)
    label_lengths = np.array([5, 3][:n], np.int32)
    labels[0, :5] = [7, 0, 19, 26, 18]  # "G'S R" style ids, the apostrophe (0) included
    labels[1, :3] = [1, 2, 1]
    return x, lengths, labels, label_lengths


def np_ctc(log_probs: np.ndarray, target: list[int], blank: int) -> float:
    """Negative log-likelihood by the CTC forward recursion (log_probs (T, C))."""
    ext = [blank]
    for t in target:
        ext += [t, blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0], alpha[1] = log_probs[0, blank], log_probs[0, ext[1]]
    for t in range(1, log_probs.shape[0]):
        prev = alpha.copy()
        for s in range(len(ext)):
            terms = [prev[s]] + ([prev[s - 1]] if s > 0 else [])
            if s > 1 and ext[s] != blank and ext[s] != ext[s - 2]:
                terms.append(prev[s - 2])
            alpha[s] = np.logaddexp.reduce(terms) + log_probs[t, ext[s]]
    return -float(np.logaddexp(alpha[-1], alpha[-2]))


def test_loss_cell_equals_numpy_ctc_with_blank_last(labels):
    from src.deepspeech2 import NetWithLossClass

    net = tiny_net(labels)
    net.set_train(False)
    x, lengths, targets, target_lengths = toy_batch()
    loss = NetWithLossClass(net, blank=len(labels) - 1)(*(Tensor(a) for a in (x, lengths, targets, target_lengths)))
    logits, out_lengths = net(Tensor(x), Tensor(lengths))
    logits, out_lengths = logits.asnumpy().astype(np.float64), out_lengths.asnumpy()
    expected = []
    for i in range(2):
        lp = logits[: out_lengths[i], i]
        lp = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
        expected.append(np_ctc(lp, list(targets[i, : target_lengths[i]]), blank=28))
    assert np.isfinite(loss.asnumpy())
    np.testing.assert_allclose(float(loss.asnumpy()), np.mean(expected), rtol=1e-4)


def one_step_delta(labels, lr=1e-3, loss_scale=1.0, max_norm=0.0, weight_decay=0.0, batch=None):
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import TrainOneStep, build_optimizer, set_learning_rate

    net = tiny_net(labels)
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    opt = build_optimizer(net, 0.5, (0.9, 0.999), 1e-8, weight_decay)
    set_learning_rate(opt, lr)
    step = TrainOneStep(NetWithLossClass(net, 28), opt, loss_scale, max_norm)
    step.set_train()
    loss, finite, norm = step(*(Tensor(a) for a in (batch or toy_batch())))
    delta = {p.name: p.asnumpy() - before[p.name] for p in net.trainable_params()}
    return delta, bool(finite.asnumpy()), float(norm.asnumpy()), step


@pytest.mark.parametrize("lr", [1e-3, 2.5e-4])
def test_adam_moves_weights_by_the_learning_rate_it_was_given(labels, lr):
    # Adam's first bias-corrected step is lr * sign(grad): the step size IS the learning rate in use.
    delta, finite, _, _ = one_step_delta(labels, lr=lr)
    biggest = max(np.abs(d).max() for d in delta.values())
    assert finite
    assert biggest == pytest.approx(lr, rel=1e-3)


def test_loss_scale_is_undone_exactly(labels):
    # Upstream passed loss_scale to Adam without scaling the loss: gradients 1024x too small, eps 1024x too big.
    plain, _, norm1, _ = one_step_delta(labels, loss_scale=1.0)
    scaled, _, norm2, _ = one_step_delta(labels, loss_scale=1024.0)
    assert norm1 == pytest.approx(norm2, rel=1e-4)
    for name in plain:
        np.testing.assert_allclose(scaled[name], plain[name], rtol=1e-3, atol=1e-9)


def test_gradient_norm_is_clipped(labels):
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import TrainOneStep

    net = tiny_net(labels)
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    sgd = nn.SGD(net.trainable_params(), learning_rate=1.0)  # delta = -clipped gradient
    step = TrainOneStep(NetWithLossClass(net, 28), sgd, 1.0, max_norm=0.5)
    step.set_train()
    _, _, norm = step(*(Tensor(a) for a in toy_batch()))
    moved = np.sqrt(sum(((p.asnumpy() - before[p.name]) ** 2).sum() for p in net.trainable_params()))
    assert float(norm.asnumpy()) > 0.5
    assert moved == pytest.approx(0.5, rel=1e-3)


def test_weight_decay_reaches_weights_but_not_batch_norm(labels):
    from src.train_step import build_optimizer

    net = tiny_net(labels)
    opt = build_optimizer(net, 3e-4, (0.9, 0.999), 1e-8, 1e-5)
    decay = dict(zip([p.name for p in opt.parameters], opt.group_weight_decay))
    assert decay["conv.conv1.weight"] == pytest.approx(1e-5)
    assert decay["RNN.lstms.0.weight_hh_l0_reverse"] == pytest.approx(1e-5)
    assert decay["fc.module.weight"] == pytest.approx(1e-5)
    assert decay["conv.bn1.gamma"] == 0 and decay["RNN.lstms.0.bias_ih_l0"] == 0
    assert float(opt.beta1.asnumpy()) == pytest.approx(0.9, rel=1e-6)
    assert float(np.asarray(opt.eps.asnumpy() if hasattr(opt.eps, "asnumpy") else opt.eps)) == pytest.approx(1e-8)


def test_non_finite_batch_is_skipped_and_counted(labels):
    x, lengths, targets, target_lengths = toy_batch()
    x[0, 0, 3, 3] = np.nan
    delta, finite, _, step = one_step_delta(labels, batch=(x, lengths, targets, target_lengths))
    assert not finite
    assert all(np.all(d == 0) for d in delta.values())
    assert int(step.skipped.asnumpy()) == 1


def test_trainer_feeds_the_schedule_to_the_optimizer_and_rotates_checkpoints(
    digit_manifest, tiny_train_config, tmp_path
):
    from src.lr_generator import get_lr
    from src.trainer import Trainer

    cfg = tiny_train_config(
        digit_manifest(range(0, 8)),
        "TrainingConfig.epochs=3",
        "OptimConfig.learning_rate=1e-3",
        "OptimConfig.learning_anneal=2.0",
        "OptimConfig.constant_epochs=1",
        "CheckpointConfig.save_checkpoint_steps=1",
        "CheckpointConfig.keep_checkpoint_max=2",
    )
    summary = Trainer(cfg).run()
    expected = get_lr(1e-3, 3, 2, 2.0, 1)
    assert summary.steps == 6
    np.testing.assert_allclose(summary.lr_used, expected, rtol=1e-6)
    np.testing.assert_allclose(summary.lr_used, [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4], rtol=1e-6)
    kept = sorted(p.name for p in (tmp_path / "run").glob("DeepSpeech-*.ckpt"))
    assert kept == ["DeepSpeech-3_1.ckpt", "DeepSpeech-3_2.ckpt"]
    sidecars = sorted(p.name for p in (tmp_path / "run").glob("DeepSpeech-*_*.ckpt.sha256"))
    assert sidecars == [f"{name}.sha256" for name in kept]  # rotation removes a checkpoint with its digest
    assert (tmp_path / "run" / "train_curve.csv").read_text().count("\n") == 7
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_validation_each_epoch_keeps_the_best_checkpoint(digit_manifest, tiny_train_config, tmp_path):
    from src.checkpoint import load_param_dict
    from src.trainer import Trainer

    val = digit_manifest(range(50, 56), "val.csv")
    cfg = tiny_train_config(
        digit_manifest(range(10, 18), "train.csv"), f"DataConfig.val_manifest={val}", "TrainingConfig.epochs=2"
    )
    summary = Trainer(cfg).run()
    assert [epoch for epoch, _, _ in summary.val] == [0, 1]
    assert all(0 <= wer <= 100 * 10 for _, wer, _ in summary.val)
    best = load_param_dict(tmp_path / "run" / "DeepSpeech-best.ckpt")
    assert (tmp_path / "run" / "DeepSpeech-best.ckpt.sha256").is_file()
    assert float(best["val_wer"].asnumpy()) == pytest.approx(min(wer for _, wer, _ in summary.val), rel=1e-5)
    rows = (tmp_path / "run" / "val_curve.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per epoch


@pytest.mark.slow
def test_releasing_memory_on_a_new_batch_shape_leaves_training_unchanged(tiny_train_config, tmp_path, monkeypatch):
    """MindSpore's memory is recycled at every change of padded length, and the weights come out identical."""
    import mindspore as ms
    import soundfile as sf

    from src.trainer import Trainer
    from tests.integration.conftest import speechy_audio

    rows = []
    for i, seconds in enumerate((0.5, 1.2, 2.5, 0.7, 1.9)):  # several padded lengths
        wav, txt = tmp_path / f"c{i}.wav", tmp_path / f"c{i}.txt"
        sf.write(str(wav), speechy_audio(seconds), 16000)
        txt.write_text("HELLO WORLD\n")
        rows.append(f"{wav},{txt}\n")
    (tmp_path / "mixed.csv").write_text("".join(rows))

    calls = []
    monkeypatch.setattr(ms, "ms_memory_recycle", lambda: calls.append(1))
    weights, shapes_seen = {}, {}
    for release in (True, False):
        cfg = tiny_train_config(
            tmp_path / "mixed.csv",
            "DataConfig.batch_size=1",
            "CheckpointConfig.save_checkpoint_steps=0",
            f"TrainingConfig.release_memory_on_new_shape={release}",
            f"CheckpointConfig.ckpt_path={tmp_path / f'run-{release}'}",
        )
        trainer = Trainer(cfg)
        seen = []

        def spy(shape, seen=seen, original=trainer._release_memory_on_new_shape):
            seen.append(shape)
            original(shape)

        monkeypatch.setattr(trainer, "_release_memory_on_new_shape", spy)
        trainer.run()
        changes = sum(a != b for a, b in zip(seen, seen[1:]))
        shapes_seen[release] = changes
        weights[release] = {p.name: p.asnumpy().copy() for p in trainer.net.trainable_params()}
        if release:
            assert changes > 0 and len(calls) == changes
    assert len(calls) == shapes_seen[True]  # none more with the release off
    for name, value in weights[True].items():
        np.testing.assert_array_equal(value, weights[False][name], err_msg=name)


def test_recomputed_lstm_backward_gives_the_same_loss_and_gradients(labels):
    """ModelConfig.recompute_rnn trades memory for one more LSTM forward; the numbers must not move."""
    from mindspore import Tensor, nn, ops

    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass

    class LossAndGrads(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.loss, self.params = NetWithLossClass(net, len(labels) - 1), net.trainable_params()
            self.grad = ops.GradOperation(get_by_list=True)

        def construct(self, *inputs):
            return self.loss(*inputs), self.grad(self.loss, self.params)(*inputs)

    kept, recomputed = DeepSpeechModel(labels, 32, 2), DeepSpeechModel(labels, 32, 2, recompute_rnn=True)
    ms.load_param_into_net(recomputed, {p.name: p for p in kept.get_parameters()})
    kept.set_train(True)  # training mode: the kept path is nn.LSTM's kernel with its workspace
    recomputed.set_train(True)
    rng = np.random.default_rng(1)
    inputs = (
        Tensor(rng.standard_normal((3, 1, 161, 123)).astype(np.float32)),
        Tensor(np.array([123, 80, 37], np.int32)),
        Tensor(rng.integers(0, 28, (3, 10)).astype(np.int32)),
        Tensor(np.array([10, 7, 3], np.int32)),
    )
    (loss_a, grads_a), (loss_b, grads_b) = LossAndGrads(kept)(*inputs), LossAndGrads(recomputed)(*inputs)
    # The recomputed path's forward runs the inference-mode kernel, whose sums may round differently: the
    # numbers agree to 1e-5 of each gradient's scale (the bound), not bit for bit.
    assert float(loss_b.asnumpy()) == pytest.approx(float(loss_a.asnumpy()), rel=1e-6)
    for param, a, b in zip(kept.trainable_params(), grads_a, grads_b):
        a, b = a.asnumpy(), b.asnumpy()
        assert np.isfinite(b).all(), param.name
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=param.name)


def test_micro_batch_count_picks_equal_parts_under_the_cap():
    from src.train_step import micro_batch_count

    assert micro_batch_count(20, 17.0, 0.0) == 1  # off
    assert micro_batch_count(20, 4.0, 80.0) == 1  # 80 s fits
    assert micro_batch_count(20, 17.0, 80.0) == 5  # 4 clips x 17 s = 68 s
    assert micro_batch_count(20, 10.0, 80.0) == 4  # 5 x 10 s (3 parts would not divide 20)
    assert micro_batch_count(7, 15.0, 80.0) == 7  # prime: one clip each
    assert micro_batch_count(3, 120.0, 80.0) == 3  # one clip past the cap still trains, alone


def test_batch_step_runs_one_pass_per_micro_batch_shape(labels):
    """BatchStep decides the split (and so the shape each pass compiles) from the padded audio and the cap."""
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import BatchStep, TrainOneStep, build_optimizer

    net = tiny_net(labels)
    step = TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1.0, 0.0)
    batch = tuple(np.concatenate([a] * 3) for a in toy_batch(n=2, frames=60))  # 6 clips of 60 frames (0.6 s)
    assert BatchStep(step, 0.0, 0.01).pass_shape(batch) == (6, 1, 161, 60)  # off
    assert BatchStep(step, 3.6, 0.01).pass_shape(batch) == (6, 1, 161, 60)  # 6 x 0.6 s fits
    assert BatchStep(step, 1.3, 0.01).pass_shape(batch) == (2, 1, 161, 60)  # 3 parts of 2 clips
    split = BatchStep(step, 1.3, 0.01)
    loss, finite, _ = split(batch)
    assert bool(finite.asnumpy()) and np.isfinite(float(loss.asnumpy())) and split.split is not None
    whole = BatchStep(step, 0.0, 0.01)
    whole(batch)
    assert whole.split is None  # never split: no gradient buffers are made


def _split_vs_whole(labels, batch, parts, steps=1, lr=1e-3):
    """Loss, finite flag, norm and the step's parameters after `steps` steps over `batch`, done whole and done
    as `parts` micro-batches."""
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import SplitBatchStep, TrainOneStep, build_optimizer

    results = []
    for split in (False, True):
        net = tiny_net(labels, hidden=24, layers=2, seed=3)
        opt = build_optimizer(net, lr, (0.9, 0.999), 1e-8, 1e-5)
        step = TrainOneStep(NetWithLossClass(net, 28), opt, 1024.0, 400.0)
        step.set_train()
        split_step = SplitBatchStep(step) if split else None
        for _ in range(steps):
            if split:
                loss, finite, norm = split_step(batch, parts)
            else:
                loss, finite, norm = step(*(Tensor(a) for a in batch))
        weights = {p.name: p.asnumpy().copy() for p in step.get_parameters()}
        results.append((float(loss.asnumpy()), bool(finite.asnumpy()), float(norm.asnumpy()), weights))
    return results


@pytest.mark.parametrize("steps, lr", [(1, 1e-3), (3, 0.0)])  # lr 0: later steps see the same weights
def test_split_batch_step_equals_the_whole_batch_step(labels, steps, lr):
    """TrainingConfig.micro_batch_seconds: summed micro-batch gradients update the weights as one pass does.

    Every micro-batch holds the same two clips, so batch-norm statistics (the one thing that is per micro-batch)
    are the same too: loss, gradient norm, Adam's moments (the gradients) and weights must match. Several steps
    catch gradient buffers that are not started over at each batch.
    """
    pair = toy_batch(seed=4, n=2, frames=60)
    batch = tuple(np.concatenate([a] * 3) for a in pair)  # 6 clips: three copies of the pair
    (loss_a, finite_a, norm_a, whole), (loss_b, finite_b, norm_b, split) = _split_vs_whole(labels, batch, 3, steps, lr)
    assert finite_a and finite_b
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert norm_b == pytest.approx(norm_a, rel=1e-4)
    assert not any(name.startswith("accum") for name in split)  # the buffers are not the step's (not saved)
    moments = [name for name in whole if name.startswith("moment")]
    assert len(moments) == 2 * len([p for p in whole if p.startswith("moment1.")]) > 0
    for name in moments:  # Adam's moments are sums of (1 - beta) g and (1 - beta2) g^2: the gradients
        scale = np.abs(whole[name]).max()
        np.testing.assert_allclose(split[name], whole[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)
    for name, value in whole.items():
        if not name.startswith(("moment", "accum")) and "moving_" not in name:
            # Adam's steps are about lr * sign(g): where g is ~0 rounding may flip one, never by more than 2 lr
            assert np.abs(split[name] - value).max() <= 2e-3 * 1.01, name


def test_split_batch_step_differs_when_the_micro_batches_differ(labels):
    # The comparison above can fail: with different clips per micro-batch the per-part BN statistics move the
    # loss, so an implementation that ignored the split (or a part) would be caught by the equal-data test.
    batch = toy_batch(seed=5, n=2, frames=60)
    (loss_a, _, _, _), (loss_b, _, _, _) = _split_vs_whole(labels, batch, 2)
    assert loss_b != pytest.approx(loss_a, rel=1e-6)


def test_split_batch_step_cut_short_leaves_no_partial_gradients(labels):
    """A batch cut short after its first micro-batch (an error, Ctrl-C) must not leak into the next one."""
    from src.deepspeech2 import NetWithLossClass
    from src.train_step import SplitBatchStep, TrainOneStep, build_optimizer

    net = tiny_net(labels, hidden=16, layers=1, seed=2)
    step = TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1024.0, 400.0)
    step.set_train()
    split = SplitBatchStep(step)
    real, calls = split.accumulate, []

    def first_then_stop(*args):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        out = real(*args)
        assert any(np.abs(b.asnumpy()).max() > 0 for b in split.buffers)  # the first part was summed
        return out

    split.accumulate = first_then_stop
    batch = tuple(np.concatenate([a] * 2) for a in toy_batch(seed=6, n=2, frames=50))
    with pytest.raises(KeyboardInterrupt):
        split(batch, 2)
    assert len(calls) == 2
    assert all(np.abs(b.asnumpy()).max() == 0 for b in split.buffers)
