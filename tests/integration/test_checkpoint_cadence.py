"""Checkpoint cadence (steps or seconds, whichever first), background writes, streamed post-save check, lab lines."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore


def small_cell(labels):
    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass
    from src.train_step import TrainOneStep, build_optimizer

    net = DeepSpeechModel(labels, 8, 1)
    return TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1.0, 0.0)


def test_due_every_n_steps_or_every_s_seconds_whichever_first(tmp_path, monkeypatch):
    from src import callback

    now = [1000.0]
    monkeypatch.setattr(callback.time, "monotonic", lambda: now[0])
    saver = callback.CheckpointSaver(tmp_path, "DeepSpeech", 10, every_steps=5, every_seconds=300)
    saver.restart_clock(0)
    assert not saver.due(4) and saver.due(5)
    saver.restart_clock(5)
    now[0] += 299.0
    assert not saver.due(6)
    now[0] += 1.0
    assert saver.due(6)  # slow steps: the clock wins
    steps_only = callback.CheckpointSaver(tmp_path, "DeepSpeech", 10, every_steps=5, every_seconds=0)
    now[0] += 10_000.0
    assert not steps_only.due(4)
    assert not callback.CheckpointSaver(tmp_path, "DeepSpeech", 10, enabled=False, every_steps=1).due(99)


def test_background_save_writes_the_snapshot_even_if_training_moves_on(labels, tmp_path):
    from src.callback import CheckpointSaver
    from src.checkpoint import load_param_dict

    cell = small_cell(labels)
    weight = next(p for p in cell.get_parameters() if p.name == "fc.module.weight")
    before = weight.asnumpy().copy()
    saver = CheckpointSaver(tmp_path, "DeepSpeech", 10, every_steps=5)
    assert saver.save_in_background(cell, 0, 4, 5)
    weight.set_data(ms.Tensor(before + 1.0))  # the next training step changes the weights at once
    path = saver.wait()
    saver.close()
    assert path == tmp_path / "DeepSpeech-1_5.ckpt"
    saved = load_param_dict(path)
    np.testing.assert_array_equal(saved["fc.module.weight"].asnumpy(), before)
    assert int(saved["global_step_num"].asnumpy()) == 5 and int(saved["step_num"].asnumpy()) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DeepSpeech-1_5.ckpt", "DeepSpeech-1_5.ckpt.sha256"]


def test_a_due_save_waits_while_the_previous_write_runs_then_rotation_keeps_the_newest(labels, tmp_path, monkeypatch):
    from src import callback

    release = threading.Event()
    real_save = callback.save_atomic

    def slow_save(*args, **kwargs):
        release.wait(timeout=30)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(callback, "save_atomic", slow_save)
    cell = small_cell(labels)
    saver = callback.CheckpointSaver(tmp_path, "DeepSpeech", 2, every_steps=1)
    assert saver.save_in_background(cell, 0, 0, 1)
    assert saver.busy() and not saver.save_in_background(cell, 0, 1, 2)  # skipped, not queued
    release.set()
    saver.wait()
    for step in (3, 4, 5):
        assert saver.save_in_background(cell, 0, step - 1, step)
        saver.wait()
    saver.close()
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["DeepSpeech-1_4.ckpt", "DeepSpeech-1_5.ckpt"]
    assert sorted(p.name for p in tmp_path.glob("*.sha256")) == [
        "DeepSpeech-1_4.ckpt.sha256",
        "DeepSpeech-1_5.ckpt.sha256",
    ]


def test_the_post_save_check_streams_the_file_and_catches_every_truncation(labels, tmp_path, monkeypatch):
    from src import digest
    from src.atomic import CorruptWrite
    from src.checkpoint import check_structure, save_atomic

    def no_full_load(*args, **kwargs):
        raise AssertionError("the post-save check must not load the whole checkpoint")

    reads = []
    real_sha = digest.sha256_file
    monkeypatch.setattr(ms, "load_checkpoint", no_full_load)
    monkeypatch.setattr(
        "src.checkpoint.sha256_file", lambda p, chunk=1 << 20: reads.append(chunk) or real_sha(p, chunk)
    )
    path = save_atomic(small_cell(labels), tmp_path / "a.ckpt", append_dict={"epoch_num": 0})
    assert reads == [1 << 20]  # the sidecar's digest is hashed in 1 MiB chunks
    names = check_structure(path)
    assert {"fc.module.weight", "moment1.fc.module.weight", "epoch_num"} <= names
    assert digest.check_digest(path)
    data = path.read_bytes()
    for cut in sorted({1, 7, len(data) // 3, len(data) // 2, len(data) - 5, len(data) - 1}):
        (tmp_path / "cut.ckpt").write_bytes(data[:cut])
        with pytest.raises(CorruptWrite, match="cut.ckpt"):
            check_structure(tmp_path / "cut.ckpt", names)


def test_progress_lines_are_the_labs(caplog):
    from src.callback import ProgressLogger

    caplog.set_level(logging.INFO)
    progress = ProgressLogger(steps_per_epoch=4, epochs=2)
    progress.step(0, 2, 388.0677795410156, True, 0.5, 3e-4, 4.0)
    progress.end_epoch(seconds=2.0, steps=4)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("epoch: 1 step: 3, loss is 388.0677795410156 (epoch 1/2 step 3/4 avg 388.0678")
    assert lines[1] == "epoch time: 2000.000 ms, per step time: 500.000 ms"


def test_lab_lines_are_written_bare_other_lines_timestamped(tmp_path):
    from src.callback import LAB_LINE
    from src.runtime import setup_logging

    log = tmp_path / "train.log"
    root = logging.getLogger()
    previous = (root.level, list(root.handlers))
    setup_logging(log)
    try:
        logging.getLogger("x").info("epoch: 1 step: 5, loss is 1.5", extra=LAB_LINE)
        logging.getLogger("x").info("saved checkpoint y")
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        root.setLevel(previous[0])
        for handler in previous[1]:
            root.addHandler(handler)
    first, second = log.read_text().splitlines()
    assert first == "epoch: 1 step: 5, loss is 1.5"
    assert second.endswith("INFO saved checkpoint y") and second[:4].isdigit()


def test_the_writer_thread_yields_the_cpu_to_training(labels, tmp_path, monkeypatch):
    import os

    from src import callback

    seen = []
    real_save = callback.save_atomic

    def recording_save(*args, **kwargs):
        seen.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(callback, "save_atomic", recording_save)
    saver = callback.CheckpointSaver(tmp_path, "DeepSpeech", 2, every_steps=1)
    assert saver.save_in_background(small_cell(labels), 0, 0, 1)
    saver.close()
    (writer, niceness), main = seen[0], os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert writer != threading.get_native_id() and niceness == min(19, main + 10)


def test_background_off_writes_in_the_step_loop(labels, tmp_path):
    from src.callback import CheckpointSaver

    saver = CheckpointSaver(tmp_path, "DeepSpeech", 2, every_steps=5, background=False)
    saver.save_periodic(small_cell(labels), 0, 4, 5)
    assert not saver.busy() and saver.written == [tmp_path / "DeepSpeech-1_5.ckpt"]
    assert (tmp_path / "DeepSpeech-1_5.ckpt").is_file() and not saver.due(6)
