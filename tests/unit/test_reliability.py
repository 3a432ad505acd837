"""Issue 12 reproductions that need no MindSpore: config values, manifests, tools, the run-directory lock, one-line
errors. Each test names the reproduction it covers (W = work lost or wrong, P = poor message)."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from src import config as C
from src.cli import entry_point
from src.rundir import RunDirError, RunLock, check_ownership, claim_run_dir


def _train_cfg(tmp_path, *overrides: str) -> C.TrainConfig:
    manifest = tmp_path / "train.csv"
    manifest.write_text("a.wav,a.txt\n")
    cfg = C.TrainConfig()
    cfg.DataConfig.train_manifest = str(manifest)
    cfg.DataConfig.labels_path = str(C.REPO_ROOT / "labels.json")
    C.apply_overrides(cfg, list(overrides))
    return cfg


# ----------------------------------------------------------------------------- W1, P7, P8: numbers finite and in range
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("OptimConfig.learning_rate=nan", "OptimConfig.learning_rate"),
        ("OptimConfig.learning_rate=inf", "OptimConfig.learning_rate"),
        ("OptimConfig.max_norm=nan", "OptimConfig.max_norm"),
        ("OptimConfig.loss_scale=-inf", "OptimConfig.loss_scale"),
        ("DataConfig.SpectConfig.window_stride=nan", "DataConfig.SpectConfig.window_stride"),
        ("TrainingConfig.seed=-1", "TrainingConfig.seed"),
        ("TrainingConfig.seed=4294967296", "TrainingConfig.seed"),
        ("DataConfig.max_duration=nan", "DataConfig.max_duration"),
        ("OptimConfig.betas=(0.9,nan)", "OptimConfig.betas[1]"),
        ("DataConfig.AugmentationConfig.noise_prob=1.5", "DataConfig.AugmentationConfig.noise_prob"),
    ],
)
def test_non_finite_or_out_of_range_numbers_are_refused_naming_the_key(tmp_path, override, key):
    cfg = _train_cfg(tmp_path, override)
    with pytest.raises(ValueError, match="^" + re.escape(key) + " must be"):
        C.validate_train(cfg)


def test_eval_and_lm_numbers_are_checked_too(tmp_path):
    cfg = C.EvalConfig()
    C.apply_overrides(cfg, ["LMConfig.alpha=nan"])
    with pytest.raises(ValueError, match="LMConfig.alpha must be a finite number"):
        C.validate_eval(cfg)


# ------------------------------------------------------------------------------- W8: the prefix is one plain name
@pytest.mark.parametrize("prefix", ["../victim/DeepSpeech", "a/b", "..", ".hidden", "x\\y", "", "ds*"])
def test_checkpoint_prefix_must_be_a_plain_name(tmp_path, prefix):
    cfg = _train_cfg(tmp_path)
    cfg.CheckpointConfig.ckpt_file_name_prefix = prefix
    with pytest.raises(ValueError, match="CheckpointConfig.ckpt_file_name_prefix must be a plain file-name prefix"):
        C.validate_train(cfg)


# ------------------------------------------------------------------ P9, P10: --config and config.json type-checked
@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"DataConfig": {"batch_size": "4"}}, r"DataConfig.batch_size must be int \(like 20\), got str '4'"),
        ({"ModelConfig": {"hidden_size": 32.5}}, r"ModelConfig.hidden_size must be int \(like 1024\), got float 32.5"),
        ({"DataConfig": {"sortagrad": "yes"}}, "DataConfig.sortagrad must be bool"),
        ({"OptimConfig": {"betas": [0.9]}}, "OptimConfig.betas must be a list of 2 values"),
        ({"OptimConfig": {"learning_rate": "1e-3"}}, "OptimConfig.learning_rate must be float"),
        ({"ModelConfig": 5}, "ModelConfig must be a JSON object"),
    ],
)
def test_config_file_values_are_type_checked_like_set(tmp_path, doc, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message) as info:
        C.update_from_dict(C.TrainConfig(), C.load_json_file(path), strict=True, source=str(path))
    assert str(path) in str(info.value)


def test_config_file_ints_are_accepted_for_floats_and_lists_for_tuples(tmp_path):
    cfg = C.TrainConfig()
    C.update_from_dict(cfg, {"OptimConfig": {"learning_rate": 1, "betas": [0.8, 0.9]}}, strict=True)
    assert cfg.OptimConfig.learning_rate == 1.0 and isinstance(cfg.OptimConfig.learning_rate, float)
    assert cfg.OptimConfig.betas == (0.8, 0.9)


def test_run_config_json_is_type_and_range_checked(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"ModelConfig": {"hidden_size": 32.5}}))
    with pytest.raises(ValueError, match=r"config.json: ModelConfig.hidden_size must be int"):
        C.load_run_model_config(tmp_path / "x.ckpt", C.SpectConfig(), C.ModelConfig())
    (tmp_path / "config.json").write_text('{"DataConfig": {"SpectConfig": {"window_stride": NaN}}}')
    with pytest.raises(ValueError, match=r"config.json: DataConfig.SpectConfig.window_stride must be a finite"):
        C.load_run_model_config(tmp_path / "x.ckpt", C.SpectConfig(), C.ModelConfig())


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n  "DataConfig": {\n    "batch_size": 4,\n  }\n}')
    with pytest.raises(ValueError, match=r"c.json:4: invalid JSON"):
        C.load_json_file(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match=r"c.json: not UTF-8"):
        C.load_json_file(path)


# ------------------------------------------------------------------------------------------ P2, P3, P4: manifests
def test_non_utf8_csv_manifest_is_named_with_its_line(tmp_path):
    from src.manifest import read_manifest

    path = tmp_path / "m.csv"
    path.write_bytes(b"a.wav,a.txt\nb\xe9.wav,b.txt\n")  # latin-1
    with pytest.raises(ValueError, match=r"m.csv:2: not UTF-8 text"):
        read_manifest(path)


def test_bom_prefixed_csv_manifest_reads_as_plain_utf8(tmp_path):
    from src.manifest import read_manifest

    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbfa.wav,a.txt\n")
    (sample,) = read_manifest(path)
    assert sample.wav_path == tmp_path / "a.wav"  # no invisible U+FEFF in row 1's path
    json_path = tmp_path / "m.json"
    json_path.write_bytes(b'\xef\xbb\xbf{"samples": [{"wav_path": "a.wav", "transcript_path": "a.txt"}]}')
    assert read_manifest(json_path)[0].wav_path == tmp_path / "a.wav"


def _tone(path, seconds=1.5):
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)


def test_transcript_path_that_is_a_directory_is_an_invalid_row(tmp_path, caplog):
    from src.dataset import load_utterances
    from src.text import load_labels

    labels = load_labels(str(C.REPO_ROOT / "labels.json"))
    for name in ("a", "b"):
        _tone(tmp_path / f"{name}.wav")
    (tmp_path / "a.txt").write_text("HELLO")
    (tmp_path / "b.txt").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,a.txt\nb.wav,b.txt\n")
    with pytest.raises(ValueError, match=r"m.csv:2: transcript path is a directory, not a file: .*b.txt"):
        load_utterances(str(manifest), labels, C.SpectConfig())
    utts = load_utterances(str(manifest), labels, C.SpectConfig(), skip_invalid=True)
    assert [u.text for u in utts] == ["HELLO"] and "b.txt" in caplog.text


# ------------------------------------------------------------------------------------------- P16, P17: json_to_csv
def test_json_to_csv_non_utf8_json_and_csv_directory_are_one_line_errors(tmp_path, capsys):
    from tools import json_to_csv

    bad = tmp_path / "m.json"
    bad.write_bytes(b'{"samples": [\n{"wav_path": "\xe9.wav", "transcript_path": "a.txt"}]}')
    assert json_to_csv.main(["--json", str(bad), "--csv", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "m.json:2: not UTF-8" in err
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"samples": [{"wav_path": "a.wav", "transcript_path": "a.txt"}]}))
    (tmp_path / "outdir").mkdir()
    assert json_to_csv.main(["--json", str(good), "--csv", str(tmp_path / "outdir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--csv" in err and "is a directory" in err
    assert list((tmp_path / "outdir").iterdir()) == []


# --------------------------------------------------------------------------------------- P1: the one-line wrapper
def test_entry_point_turns_user_errors_into_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.delenv("DS2_DEBUG", raising=False)

    @entry_point
    def main(argv=None):
        raise KeyError("unknown config key 'A.b'")

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown config key 'A.b'\n"
    with pytest.raises(KeyError):
        main(["--debug"])
    monkeypatch.setenv("DS2_DEBUG", "1")
    with pytest.raises(KeyError):
        main([])


def test_entry_point_keeps_tracebacks_for_bugs():
    @entry_point
    def main(argv=None):
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        main([])


def test_train_user_errors_print_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
    import train

    monkeypatch.chdir(tmp_path)
    manifest = tmp_path / "train.csv"
    manifest.write_text("a.wav,a.txt\n")
    run = tmp_path / "run"
    for extra, message in (
        (["--set", "OptimConfig.learning_rate=nan"], "error: OptimConfig.learning_rate must be a finite number"),
        (["--set", "TrainingConfig.seed=-1"], "error: TrainingConfig.seed must be >= 0"),
        (
            ["--set", "CheckpointConfig.ckpt_file_name_prefix=../victim/DS"],
            "error: CheckpointConfig.ckpt_file_name_prefix must",
        ),
        (["--train_manifest", str(tmp_path / "nope.csv")], "error: DataConfig.train_manifest not found"),
    ):
        argv = ["--train_manifest", str(manifest), "--save_dir", str(run), "--epochs", "1", *extra]
        assert train.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err, err
    assert not run.exists()  # nothing was written for a refused command


def test_train_config_file_of_the_wrong_type_names_file_and_key(tmp_path, capsys):
    import train

    manifest = tmp_path / "train.csv"
    manifest.write_text("a.wav,a.txt\n")
    config = tmp_path / "c.json"
    for doc, key in (
        ({"DataConfig": {"batch_size": "4"}}, "batch_size"),
        ({"ModelConfig": {"hidden_size": 32.5}}, "hidden_size"),
    ):
        config.write_text(json.dumps(doc))
        argv = ["--train_manifest", str(manifest), "--config", str(config), "--save_dir", str(tmp_path / "run")]
        assert train.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {config}: ") and key in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------- W2, W3: one run per directory
def test_lock_refuses_a_second_holder_with_the_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunDirError, match=rf"in use by another training run \(pid {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass


def test_lock_is_released_when_the_holder_dies(tmp_path):
    import subprocess

    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from src.rundir import RunLock; "
        "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(C.REPO_ROOT)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(RunDirError, match=rf"pid {proc.pid}\)"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    RunLock(tmp_path).acquire().release()  # the kernel dropped the dead process's lock


def test_new_run_into_another_runs_directory_is_refused_unless_resume_or_overwrite(tmp_path):
    (tmp_path / "DeepSpeech-1_5.ckpt").write_bytes(b"x")
    (tmp_path / "DeepSpeech-1_5.ckpt.sha256").write_text("digest")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"already holds 1 checkpoint.*--resume .*--overwrite"):
        check_ownership(tmp_path, resume=False, overwrite=False)
    assert check_ownership(tmp_path, resume=True, overwrite=False) == []
    lock = claim_run_dir(tmp_path, resume=False, overwrite=True)
    lock.release()
    assert not (tmp_path / "DeepSpeech-1_5.ckpt").exists() and (tmp_path / "config.json").exists()
    assert not (tmp_path / "DeepSpeech-1_5.ckpt.sha256").exists()  # --overwrite removes a checkpoint's digest too


# ------------------------------------------------------------------------------------- P14: transcribe segments
@pytest.mark.parametrize("value", ["nan", "inf", "0.5"])
def test_transcribe_segment_seconds_must_be_finite(tmp_path, capsys, value):
    import transcribe

    audio = tmp_path / "a.wav"
    _tone(audio)
    argv = [str(audio), "--model_path", str(tmp_path / "m.onnx"), "--segment_seconds", value]
    assert transcribe.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TranscribeConfig.segment_seconds must be a finite number of seconds above 1")
    assert "a.wav" not in err


def test_resume_or_a_fresh_directory_keeps_every_file(tmp_path):
    for name in ("DeepSpeech-1_5.ckpt", "train_curve.csv", "val_curve.csv", "curves.png", "config.json"):
        (tmp_path / name).write_text("x")
    claim_run_dir(tmp_path, resume=True, overwrite=False).release()
    claim_run_dir(tmp_path, resume=True, overwrite=True).release()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "DeepSpeech-1_5.ckpt", "config.json", "curves.png", "train_curve.csv", "val_curve.csv"
    ]  # fmt: skip
