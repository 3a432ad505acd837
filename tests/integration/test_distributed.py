"""Data-parallel training with msrun on 2 CPU workers equals one process averaging the same batches' gradients."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = [pytest.mark.mindspore, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
STEPS, BATCH, HIDDEN = 3, 3, 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference_weights(manifest: Path, labels: list[str]) -> dict[str, np.ndarray]:
    """One process: per step, average the gradients of rank 0's and rank 1's batches, clip, Adam."""
    from mindspore import Tensor, nn, ops

    from src import config as C
    from src.dataset import create_dataset
    from src.deepspeech2 import NetWithLossClass, build_network
    from src.train_step import build_optimizer, set_learning_rate

    np.random.seed(1)
    ms.set_seed(1)
    spect, model = C.SpectConfig(), C.ModelConfig(hidden_size=HIDDEN, hidden_layers=1)
    shards = [
        create_dataset(str(manifest), labels, spect, batch_size=BATCH, training=True, rank=r, world=2) for r in (0, 1)
    ]
    net = build_network(labels, spect, model)
    opt = build_optimizer(net, 3e-4, (0.9, 0.999), 1e-8, 1e-5)
    loss_cell = NetWithLossClass(net, 28)

    class Grads(nn.Cell):
        def __init__(self):
            super().__init__()
            self.grad = ops.GradOperation(get_by_list=True)

        def construct(self, *batch):
            return self.grad(loss_cell, opt.parameters)(*batch)

    grads_of = Grads()
    net.set_train(True)
    batches = [[b for _, b in shard.iterate(0)][:STEPS] for shard in shards]
    for step in range(STEPS):
        per_rank = [grads_of(*(Tensor(a) for a in batches[r][step].arrays())) for r in (0, 1)]
        grads = [(g0.asnumpy() + g1.asnumpy()) / 2 for g0, g1 in zip(*per_rank)]
        norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
        factor = min(400.0 / (norm + 1e-6), 1.0)
        set_learning_rate(opt, 3e-4)
        opt(tuple(Tensor((g * factor).astype(np.float32)) for g in grads))
    return {p.name: p.asnumpy() for p in net.trainable_params()}


@pytest.mark.skipif(shutil.which("msrun") is None, reason="msrun (MindSpore's launcher) not on PATH")
def test_two_cpu_workers_match_a_single_process(digit_manifest, tmp_path, labels):
    manifest = digit_manifest(range(0, 24))
    run_dir = tmp_path / "run"
    cmd = [
        "msrun", "--worker_num=2", "--local_worker_num=2", f"--master_port={free_port()}",
        f"--log_dir={tmp_path / 'logs'}", "--join=True", str(REPO / "train.py"), "--is_distributed",
        "--train_manifest", str(manifest), "--epochs", "1", "--batch_size", str(BATCH), "--save_dir", str(run_dir),
        "--labels_path", str(REPO / "labels.json"), "--set", f"ModelConfig.hidden_size={HIDDEN}",
        "--set", "ModelConfig.hidden_layers=1", "--set", f"TrainingConfig.max_steps={STEPS}",
    ]  # fmt: skip
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(REPO))
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    logs = "".join(p.read_text(errors="replace") for p in sorted((tmp_path / "logs").glob("worker_*.log")))
    assert run.returncode == 0, (run.stdout + logs)[-4000:]
    assert "ranks agree: weight spread across 2 ranks = 0\n" in logs  # both ranks hold identical weights
    saved = ms.load_checkpoint(str(run_dir / f"DeepSpeech-1_{STEPS}.ckpt"))
    expected = reference_weights(manifest, labels)
    diff = max(float(np.abs(saved[k].asnumpy() - v).max()) for k, v in expected.items())
    print(f"max |distributed - single process| = {diff:.3g}")
    assert diff < 1e-5
    moved = max(float(np.abs(saved[k].asnumpy()).max()) for k in expected)
    assert moved > 0
