"""Long runs survive faults: atomic verified checkpoints, broken files, failed saves, NaN steps, signals, SIGKILL."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def digits(digit_manifest):
    return digit_manifest(range(24, 48))


def small_cell(labels):
    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass
    from src.train_step import TrainOneStep, build_optimizer

    net = DeepSpeechModel(labels, 8, 1)
    return TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1.0, 0.0)


def test_truncated_checkpoint_is_named_and_skipped_by_resume(labels, tmp_path, caplog):
    from src.callback import CheckpointSaver
    from src.checkpoint import CheckpointError, find_resume_checkpoint, load_param_dict

    saver = CheckpointSaver(tmp_path, "DeepSpeech", 5)
    cell = small_cell(labels)
    good = saver.save(cell, 0, 1, 2)
    newest = saver.save(cell, 0, 3, 4)
    newest.chmod(0o644)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=str(newest)):
        load_param_dict(newest)
    path, params = find_resume_checkpoint(tmp_path)
    assert path == good and "moment1.fc.module.weight" in params
    assert any(str(newest) in r.getMessage() for r in caplog.records)


def test_failed_save_keeps_the_previous_checkpoint(labels, tmp_path, monkeypatch, caplog):
    from src.callback import CheckpointSaver
    from src.checkpoint import load_param_dict

    saver = CheckpointSaver(tmp_path, "DeepSpeech", 5)
    cell = small_cell(labels)
    first = saver.save(cell, 0, 0, 1)
    real_save = ms.save_checkpoint

    def disk_full(obj, name, **kwargs):
        Path(name).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", disk_full)
    assert saver.save(cell, 0, 1, 2) is None
    monkeypatch.setattr(ms, "save_checkpoint", real_save)
    assert saver.failures == 1 and "No space left on device" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, f"{first.name}.sha256"]  # nothing half-written
    assert "fc.module.weight" in load_param_dict(first)


def test_nan_batch_is_skipped_and_training_continues(digits, tiny_train_config):
    from src.dataset import SpeechDataset
    from src.trainer import Trainer

    trainer = Trainer(tiny_train_config(digits))
    real_make_batch = SpeechDataset.make_batch
    calls = []

    def poisoned(self, indices, epoch, pool):
        batch = real_make_batch(self, indices, epoch, pool)
        calls.append(1)
        if len(calls) == 2:
            batch.features[0, 0, 0, 0] = np.nan
        return batch

    trainer.data.make_batch = poisoned.__get__(trainer.data)
    summary = trainer.run()
    assert summary.steps == 6 and summary.skipped_steps == 1
    assert all(np.isfinite(p.asnumpy()).all() for p in trainer.net.trainable_params())
    assert trainer.step_cell.skipped.asnumpy() == 1


def _train_cmd(manifest, run_dir, *extra):
    return [
        sys.executable, str(REPO / "train.py"), "--train_manifest", str(manifest), "--epochs", "2",
        "--batch_size", "4", "--save_dir", str(run_dir), "--set", "ModelConfig.hidden_size=16",
        "--set", "ModelConfig.hidden_layers=1", "--set", "CheckpointConfig.save_checkpoint_steps=2",
        "--set", "DataConfig.AugmentationConfig.spec_augment=true", *extra,
    ]  # fmt: skip


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended before {path} appeared"
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.1)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(digits, tmp_path):
    env = dict(os.environ, GLOG_v="3")
    full = subprocess.run(_train_cmd(digits, tmp_path / "full"), env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stdout[-2000:]
    proc = subprocess.Popen(_train_cmd(digits, tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    _wait_for(tmp_path / "cut" / "DeepSpeech-1_4.ckpt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "DeepSpeech-2_6.ckpt").exists()
    resumed = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--resume", str(tmp_path / "cut")], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert "resumed from" in resumed.stdout
    a = ms.load_checkpoint(str(tmp_path / "full" / "DeepSpeech-2_6.ckpt"))
    b = ms.load_checkpoint(str(tmp_path / "cut" / "DeepSpeech-2_6.ckpt"))
    assert set(a) == set(b)
    diff = max(float(np.abs(a[k].asnumpy().astype(np.float64) - b[k].asnumpy()).max()) for k in a)
    assert diff <= 1e-6


@pytest.mark.slow
def test_sigterm_finishes_the_step_saves_and_exits_cleanly(digits, tmp_path):
    proc = subprocess.Popen(_train_cmd(digits, tmp_path / "run"), env=dict(os.environ, GLOG_v="3"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    _wait_for(tmp_path / "run" / "DeepSpeech-1_2.ckpt", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert "SIGTERM received" in out and "stopped by SIGTERM" in out
    saved = sorted((tmp_path / "run").glob("DeepSpeech-*.ckpt"))
    assert len(saved) >= 2 and not (tmp_path / "run" / "DeepSpeech-2_6.ckpt").exists()
