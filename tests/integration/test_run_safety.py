"""Issue 12 reproductions that need MindSpore: run directories, guarded saves, checkpoint integrity, eval output.

W = work lost or wrong, P = poor message (numbered as in the issue). A synthetic corpus (tones) and a resumable
checkpoint of an untrained tiny network stand in for a real run, so most tests never train; the two that must
train (resume keeps the best WER, disk full) are marked slow.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore

TINY = [
    "--epochs",
    "1",
    "--batch_size",
    "4",
    "--set",
    "ModelConfig.hidden_size=32",
    "--set",
    "ModelConfig.hidden_layers=1",
]
WORDS = ["HELLO", "YES", "NO WAY", "GOOD", "IT'S OK", "RED", "BLUE SKY", "ONE"]


@pytest.fixture(autouse=True)
def fresh_logging():
    """Entry scripts install root handlers on the stream of the moment; capsys replaces it for every test."""
    import logging

    root = logging.getLogger()
    saved = list(root.handlers)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)


def script(name: str):
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Eight 1.2-1.9 s tones with short transcripts and a CSV manifest of them (`m.csv`)."""
    folder = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, text in enumerate(WORDS):
        t = np.arange(int((1.2 + 0.1 * i) * 16000)) / 16000
        noise = 0.01 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(
            str(folder / f"c{i}.wav"), (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + noise).astype(np.float32), 16000
        )
        (folder / f"c{i}.txt").write_text(text)
        rows.append(f"{folder}/c{i}.wav,{folder}/c{i}.txt\n")
    (folder / "m.csv").write_text("".join(rows))
    return folder


@pytest.fixture(scope="module")
def run_template(tmp_path_factory, labels, corpus) -> Path:
    """A run directory as train.py leaves it: config.json, a resumable checkpoint, a best checkpoint (no training)."""
    from src import config as C
    from src.callback import CheckpointSaver
    from src.checkpoint import save_atomic
    from src.deepspeech2 import NetWithLossClass, build_network
    from src.train_step import TrainOneStep, build_optimizer

    folder = tmp_path_factory.mktemp("run")
    cfg = C.TrainConfig(ModelConfig=C.ModelConfig(hidden_size=32, hidden_layers=1))
    cfg.CheckpointConfig.ckpt_path = str(folder)
    cfg.DataConfig.train_manifest, cfg.DataConfig.batch_size = str(corpus / "m.csv"), 4
    C.save_config(cfg, folder)
    net = build_network(labels, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    cell = TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1.0, 0.0)
    assert CheckpointSaver(folder, "DeepSpeech", 5).save(cell, 0, 1, 2) == folder / "DeepSpeech-1_2.ckpt"
    save_atomic(cell, folder / "DeepSpeech-best.ckpt", {"epoch_num": 0, "val_wer": 90.0})
    return folder


@pytest.fixture()
def run_dir(run_template, tmp_path) -> Path:
    """A private copy of the template run."""
    return Path(shutil.copytree(run_template, tmp_path / "run"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def flip_bytes(path: Path, count: int = 40) -> None:
    """Flip `count` bytes in the middle of the file (inside a weight tensor of these checkpoints)."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------- W2, W3, W4: the run directory
def test_second_run_into_a_locked_directory_is_refused_with_the_pid(run_dir, corpus, capsys):
    from src.rundir import RunLock

    before = snapshot(run_dir)
    with RunLock(run_dir):
        assert script("train").main(["--resume", str(run_dir), *TINY[:2]]) == 2
    assert f"is in use by another training run (pid {os.getpid()})" in one_error_line(capsys)
    after = snapshot(run_dir)
    after.pop(".train.lock", None), before.pop(".train.lock", None)
    assert after == before


def test_new_run_into_another_runs_directory_is_refused_and_changes_nothing(run_dir, corpus, capsys):
    before = snapshot(run_dir)
    argv = ["--train_manifest", str(corpus / "m.csv"), "--save_dir", str(run_dir), *TINY]
    assert script("train").main(argv) == 2
    line = one_error_line(capsys)
    assert "already holds 2 checkpoint(s) of another run" in line and f"--resume {run_dir}" in line
    assert snapshot(run_dir) == before  # config.json and checkpoints untouched


def test_resume_typo_fails_before_the_run_config_is_rewritten(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real = tmp_path / "checkpoint"
    run_dir.rename(real)
    before = snapshot(real)
    assert script("train").main(["--resume", "./chekpoint"]) == 2
    assert one_error_line(capsys) == "error: --resume: no such checkpoint file or directory: chekpoint"
    assert snapshot(real) == before


def test_invalid_manifest_rows_fail_before_the_run_config_is_rewritten(run_dir, corpus, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{corpus}/c0.wav,{corpus}/c0.txt\n{corpus}/missing.wav,{corpus}/c1.txt\n")
    before = snapshot(run_dir)
    assert script("train").main(["--resume", str(run_dir), "--train_manifest", str(bad)]) == 2
    assert "bad.csv: 1 of 2 rows are invalid" in one_error_line(capsys)
    assert snapshot(run_dir)["config.json"] == before["config.json"]


def test_resume_of_a_missing_run_names_it(tmp_path, capsys):
    assert script("train").main(["--resume", str(tmp_path / "no" / "such" / "run")]) == 2
    assert "no such checkpoint file or directory" in one_error_line(capsys)  # P11: not the train manifest


def test_resume_of_a_best_checkpoint_says_to_use_pre_trained_model_path(run_dir, capsys):
    assert script("train").main(["--resume", str(run_dir / "DeepSpeech-best.ckpt")]) == 2
    line = one_error_line(capsys)  # P18: was KeyError: 'step_num'
    assert "holds no training position" in line and "--pre_trained_model_path" in line


# ------------------------------------------------------------------------------------ W8: prefix from config.json
def test_run_config_prefix_outside_the_run_is_refused(run_dir, tmp_path, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    config["CheckpointConfig"]["ckpt_file_name_prefix"] = "../victim/DeepSpeech"
    (run_dir / "config.json").write_text(json.dumps(config))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "DeepSpeech-9_9.ckpt").write_text("someone else's")
    assert script("train").main(["--resume", str(run_dir)]) == 2
    assert "CheckpointConfig.ckpt_file_name_prefix must be a plain file-name prefix" in one_error_line(capsys)
    assert [p.name for p in victim.iterdir()] == ["DeepSpeech-9_9.ckpt"]


# ------------------------------------------------------------------- W9: checkpoint integrity (sha256 sidecar)
def test_bit_flipped_checkpoint_is_refused_by_every_reader(run_dir, corpus, tmp_path, monkeypatch, capsys):
    from src.checkpoint import CheckpointError, has_crc, load_param_dict
    from src.digest import digest_path

    ckpt = run_dir / "DeepSpeech-1_2.ckpt"
    assert digest_path(ckpt).is_file() and not has_crc(ckpt)
    flip_bytes(ckpt)
    with pytest.raises(CheckpointError, match=r"is damaged.*sha256 digest in DeepSpeech-1_2\.ckpt\.sha256"):
        load_param_dict(ckpt)
    monkeypatch.chdir(tmp_path)
    runs = {
        "eval": ["--pretrain_ckpt", str(ckpt), "--test_manifest", str(corpus / "m.csv")],
        "export": ["--pre_trained_model_path", str(ckpt), "--file_name", str(tmp_path / "x"), "--input_seconds", "3"],
        "train": ["--resume", str(ckpt)],
        "transcribe": [str(corpus / "c0.wav"), "--model_path", str(ckpt)],
    }
    for name, argv in runs.items():
        assert script(name).main(argv) == 2, name
        line = one_error_line(capsys)
        assert str(ckpt) in line and "damaged" in line, (name, line)
    argv = ["--train_manifest", str(corpus / "m.csv"), "--pre_trained_model_path", str(ckpt)]
    assert script("train").main([*argv, "--save_dir", str(tmp_path / "new"), *TINY]) == 2
    assert "damaged" in one_error_line(capsys) and not (tmp_path / "new").exists()
    assert not list(tmp_path.glob("x.*"))


def test_checkpoints_without_a_digest_still_load(run_template, labels, tmp_path):
    """Model-zoo checkpoints carry no sidecar: they load as before (and ours load in MindSpore's plain loader)."""
    from src import config as C
    from src.checkpoint import has_crc, load_network_weights, load_param_dict
    from src.deepspeech2 import build_network
    from src.digest import digest_path

    params = ms.load_checkpoint(str(run_template / "DeepSpeech-best.ckpt"))
    plain = tmp_path / "zoo.ckpt"
    ms.save_checkpoint([{"name": n, "data": p} for n, p in params.items()], str(plain))
    assert not digest_path(plain).exists() and not has_crc(plain)
    assert "fc.module.weight" in load_param_dict(plain)
    net = build_network(labels, C.SpectConfig(), C.ModelConfig(hidden_size=32, hidden_layers=1))
    assert load_network_weights(net, plain).loaded > 0


def test_checkpoints_with_a_crc_trailer_still_load_and_their_crc_is_checked(run_template, tmp_path):
    """Files this project wrote with save_checkpoint(crc_check=True) before the sidecar: loaded, CRC checked."""
    from src.checkpoint import CheckpointError, has_crc, load_param_dict

    params = ms.load_checkpoint(str(run_template / "DeepSpeech-1_2.ckpt"))
    legacy = tmp_path / "legacy.ckpt"
    ms.save_checkpoint([{"name": n, "data": p} for n, p in params.items()], str(legacy), crc_check=True)
    assert has_crc(legacy) and "step_num" in load_param_dict(legacy)
    flip_bytes(legacy)
    with pytest.raises(CheckpointError, match="legacy.ckpt is damaged.*CRC"):
        load_param_dict(legacy)


def test_a_malformed_sidecar_is_named(run_dir):
    from src.checkpoint import CheckpointError, load_param_dict
    from src.digest import digest_path

    ckpt = run_dir / "DeepSpeech-1_2.ckpt"
    digest_path(ckpt).write_text("not a digest\n")
    with pytest.raises(CheckpointError, match=r"DeepSpeech-1_2\.ckpt\.sha256 does not hold a sha256 line"):
        load_param_dict(ckpt)


# ----------------------------------------------------------------- W10: the post-save check never deletes blindly
def test_save_keeps_a_checkpoint_that_cannot_be_read_back(labels, tmp_path, monkeypatch, caplog):
    from src import checkpoint
    from src import config as C
    from src.checkpoint import load_param_dict, save_atomic
    from src.deepspeech2 import build_network

    net = build_network(labels, C.SpectConfig(), C.ModelConfig(hidden_size=8, hidden_layers=1))

    def no_memory(*args, **kwargs):
        raise MemoryError("simulated memory pressure")

    def unreadable(path, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ms, "load_checkpoint", no_memory)  # an old check loaded the whole file back
    monkeypatch.setattr(checkpoint, "check_structure", unreadable)
    monkeypatch.setattr(checkpoint, "sha256_file", unreadable)
    path = save_atomic(net, tmp_path / "big.ckpt")
    assert path.is_file() and "could not read back" in caplog.text and "without a sha256 digest" in caplog.text
    monkeypatch.undo()
    checkpoint.check_structure(path)
    assert "fc.module.weight" in load_param_dict(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ckpt"]  # no sidecar for a file it could not hash


def test_save_discards_a_file_proven_cut_short_and_keeps_the_previous_one(labels, tmp_path, monkeypatch):
    from src import config as C
    from src.checkpoint import CheckpointError, save_atomic
    from src.deepspeech2 import build_network

    net = build_network(labels, C.SpectConfig(), C.ModelConfig(hidden_size=8, hidden_layers=1))
    (tmp_path / "m.ckpt").write_text("previous")
    (tmp_path / "m.ckpt.sha256").write_text("previous digest")
    real_save = ms.save_checkpoint

    def truncating_save(obj, name, **kwargs):
        real_save(obj, name, **kwargs)
        Path(name).chmod(0o644)
        data = Path(name).read_bytes()
        Path(name).write_bytes(data[: len(data) // 2])

    monkeypatch.setattr(ms, "save_checkpoint", truncating_save)
    with pytest.raises(CheckpointError, match="m.ckpt.*cut short"):
        save_atomic(net, tmp_path / "m.ckpt")
    assert snapshot(tmp_path) == {"m.ckpt": b"previous", "m.ckpt.sha256": b"previous digest"}


def test_disk_full_while_writing_the_sidecar_leaves_no_partial_file(labels, tmp_path, monkeypatch, caplog):
    from src import config as C
    from src.checkpoint import load_param_dict, save_atomic
    from src.deepspeech2 import build_network

    net = build_network(labels, C.SpectConfig(), C.ModelConfig(hidden_size=8, hidden_layers=1))
    real_write_text = Path.write_text

    def full_for_digests(self, text, *args, **kwargs):
        if ".sha256" in self.name:
            real_write_text(self, text[:10], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_for_digests)
    path = save_atomic(net, tmp_path / "m.ckpt")
    monkeypatch.undo()
    assert "saved, but not its digest" in caplog.text and "No space left on device" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]  # no partial sidecar, no temporary file
    assert "fc.module.weight" in load_param_dict(path)  # it loads as an unchecked checkpoint


# ------------------------------------------------------------------ W7, P5: eval prints first, reports skipped clips
def test_eval_prints_the_summary_even_when_results_cannot_be_written(run_dir, corpus, tmp_path, monkeypatch, capsys):
    from src import dataset
    from src.audio import AudioError

    real_load = dataset.load_audio

    def flaky(path, sample_rate=16000):
        if Path(path).name == "c3.wav":
            raise AudioError(f"cannot read audio file {path}: simulated")
        return real_load(path, sample_rate)

    monkeypatch.setattr(dataset, "load_audio", flaky)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a folder should be")
    argv = ["--pretrain_ckpt", str(run_dir / "DeepSpeech-1_2.ckpt"), "--test_manifest", str(corpus / "m.csv")]
    argv += ["--quiet", "--save_output", str(blocker / "out.csv")]
    assert script("eval").main(argv) == 1  # a clip was skipped and the user did not ask for that
    out = capsys.readouterr().out
    assert "Test Summary \tAverage WER" in out
    assert "Skipped 1 clips that could not be read (not in the averages): " in out and "c3.wav" in out
    assert "per-utterance results not saved" in out and str(blocker / "out.csv") in out
    assert blocker.read_text() == "a file where a folder should be"
    assert script("eval").main([*argv, "--skip_invalid"]) == 0


# ------------------------------------------------------------------------- P12, P13: export checks before MindSpore
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch_size", "0", "ExportConfig.batch_size must be at least 1, got 0"),
        ("--input_seconds", "0", "ExportConfig.input_seconds must be a finite number of seconds above 1"),
        ("--input_seconds", "nan", "ExportConfig.input_seconds must be a finite number of seconds above 1"),
    ],
)
def test_export_refuses_impossible_shapes_before_compiling(
    run_dir, tmp_path, monkeypatch, capsys, flag, value, message
):
    monkeypatch.chdir(tmp_path)
    argv = ["--pre_trained_model_path", str(run_dir / "DeepSpeech-1_2.ckpt"), "--file_name", str(tmp_path / "x")]
    assert script("export").main([*argv, flag, value]) == 2
    assert one_error_line(capsys).startswith(f"error: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no ./rank_0/ graph dump, no export


# ------------------------------------------------------------------------- P6: corrupt exported model in transcribe
@pytest.mark.parametrize("suffix", [".onnx", ".mindir"])
def test_transcribe_names_a_corrupt_exported_model(tmp_path, corpus, capsys, suffix):
    model = tmp_path / f"model{suffix}"
    model.write_bytes(os.urandom(2000))
    assert script("transcribe").main([str(corpus / "c0.wav"), "--model_path", str(model)]) == 2
    line = one_error_line(capsys)
    assert str(model) in line and "corrupt or truncated" in line


# ----------------------------------------------------------------------------- W6: resume keeps the best WER (slow)
@pytest.mark.slow
def test_resume_restores_the_best_validation_wer(run_dir, corpus, capsys):
    from src.checkpoint import best_checkpoint_wer

    config = json.loads((run_dir / "config.json").read_text())
    config["DataConfig"]["val_manifest"] = str(corpus / "m.csv")
    (run_dir / "config.json").write_text(json.dumps(config))
    best = run_dir / "DeepSpeech-best.ckpt"
    params = ms.load_checkpoint(str(best))
    params["val_wer"] = ms.Parameter(ms.Tensor(0.0, ms.float32), name="val_wer")  # a best no epoch can beat
    from src.checkpoint import save_atomic

    save_atomic([{"name": n, "data": p} for n, p in params.items()], best)
    before = best.read_bytes()
    assert script("train").main(["--resume", str(run_dir), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "best validation WER so far 0.000" in out and "epoch 2 validation" in out
    assert "new best validation WER" not in out
    assert best.read_bytes() == before and best_checkpoint_wer(best) == 0.0


# ------------------------------------------------------------------------------------ W5: disk full (simulated, slow)
def _disk_full(monkeypatch):
    """ENOSPC at every save site: checkpoint writes, fsync of any atomic write, the PNG, curve and log appends."""
    import matplotlib.figure

    from src import curves

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def partial_then_full(obj, name, *args, **kwargs):
        Path(name).write_bytes(b"partial")
        Path(name).with_suffix(".tmp").write_bytes(b"partial")  # MindSpore's own temp name
        full()

    def savefig(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG partial")
        full()

    real_open = open

    def curve_open(path, mode="r", *args, **kwargs):
        if "a" in mode or "w" in mode:
            full()
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(ms, "save_checkpoint", partial_then_full)
    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    monkeypatch.setattr(curves, "open", curve_open, raising=False)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".part"))


@pytest.mark.slow
def test_disk_full_training_finishes_its_steps_and_leaves_no_partial_files(corpus, tmp_path, monkeypatch, capsys):
    from src.trainer import Trainer

    run = tmp_path / "run"
    real_run = Trainer.run

    def run_on_a_full_disk(self):
        _disk_full(monkeypatch)  # config.json is written; the disk fills as training starts
        return real_run(self)

    monkeypatch.setattr(Trainer, "run", run_on_a_full_disk)
    argv = ["--train_manifest", str(corpus / "m.csv"), "--val_manifest", str(corpus / "m.csv"), "--save_dir", str(run)]
    assert script("train").main([*argv, *TINY]) == 0
    out = capsys.readouterr().out
    assert "training finished: 2 steps" in out
    assert f"could not write {run / 'DeepSpeech-1_2.ckpt'}: No space left on device" in out
    assert "best checkpoint not saved" in out and "No space left on device" in out
    assert "learning curves not drawn" in out
    assert leftovers(run) == []
    assert not list(run.glob("*.ckpt")) and not list(run.glob("*.sha256")) and not (run / "curves.png").exists()


def test_disk_full_eval_still_prints_its_summary(run_dir, corpus, tmp_path, monkeypatch, capsys):
    _disk_full(monkeypatch)
    out_csv = tmp_path / "results.csv"
    argv = ["--pretrain_ckpt", str(run_dir / "DeepSpeech-1_2.ckpt"), "--test_manifest", str(corpus / "m.csv")]
    assert script("eval").main([*argv, "--quiet", "--save_output", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "Test Summary \tAverage WER" in out and "per-utterance results not saved" in out
    assert not out_csv.exists() and leftovers(tmp_path) == []


@pytest.fixture()
def small_filesystem(tmp_path):
    """A 10 MiB tmpfs (room for one 7 MB checkpoint of the tiny network); skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow
def test_real_disk_full_training_and_eval_on_a_small_filesystem(small_filesystem, corpus, monkeypatch, capsys):
    run = small_filesystem / "run"
    data = ["--train_manifest", str(corpus / "m.csv"), "--val_manifest", str(corpus / "m.csv")]
    argv = [*data, "--save_dir", str(run), *TINY[2:], "--epochs", "2"]
    assert script("train").main(argv) == 0
    out = capsys.readouterr().out
    assert "training finished: 4 steps" in out and "No space left on device" in out
    assert "best checkpoint not saved" in out
    assert leftovers(small_filesystem) == []
    assert (run / "DeepSpeech-1_2.ckpt").is_file()
    assert all(p.with_name(p.name.removesuffix(".sha256")).is_file() for p in run.glob("*.sha256"))  # no orphan
    fd = os.open(small_filesystem / "filler", os.O_WRONLY | os.O_CREAT)  # fill what is left, unbuffered
    try:
        while os.write(fd, b"\0" * (1 << 16)):
            pass
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)
    argv = ["--pretrain_ckpt", str(run / "DeepSpeech-1_2.ckpt"), "--test_manifest", str(corpus / "m.csv"), "--quiet"]
    assert script("eval").main(argv) == 0
    out = capsys.readouterr().out
    assert "Test Summary \tAverage WER" in out and "per-utterance results not saved" in out
    assert leftovers(small_filesystem) == [] and not (run / "eval_results.csv").exists()
