"""The bash launchers fail loudly on wrong arguments and name missing files (no training is started)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHON": "false"}  # a Python that fails: nothing may get that far
    return subprocess.run(["bash", str(REPO / "scripts" / script), *args], capture_output=True, text=True, env=env,
                          cwd=cwd)  # fmt: skip


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("run_eval_cpu.sh", (), "Usage: bash"),
        ("run_eval_cpu.sh", ("--test_manifest", "x"), "Usage: bash"),
        ("run_eval_gpu.sh", ("0",), "Usage: bash"),
        ("run_eval_gpu.sh", ("zero", "a.ckpt"), "Usage: bash"),
        ("run_standalone_train_gpu.sh", ("zero",), "DEVICE_ID must be a number"),
        ("run_distribute_train_cpu.sh", ("two",), "Usage: bash"),
    ],
)
def test_wrong_arguments_print_usage(script, args, message):
    result = run(script, *args)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("run_standalone_train_cpu.sh", ("missing.ckpt",)),
        ("run_standalone_train_gpu.sh", ("0", "missing.ckpt")),
        ("run_eval_cpu.sh", ("missing.ckpt",)),
        ("run_eval_gpu.sh", ("1", "missing.ckpt")),
    ],
)
def test_missing_checkpoint_is_named(script, args, tmp_path):
    result = run(script, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert "file not found: missing.ckpt" in result.stderr


def test_lab_two_argument_eval_form_joins_dir_and_name(tmp_path):
    (tmp_path / "ckpts").mkdir()
    result = run("run_eval_cpu.sh", "ckpts", "DeepSpeech-1_1.ckpt", cwd=tmp_path)
    assert result.returncode == 2
    assert "file not found: ckpts/DeepSpeech-1_1.ckpt" in result.stderr
    result = run("run_eval_cpu.sh", "ckpts", cwd=tmp_path)
    assert result.returncode == 2 and "needs a CKPT_NAME" in result.stderr


def test_arguments_reach_python(tmp_path):
    ckpt = tmp_path / "a.ckpt"
    ckpt.write_bytes(b"x")
    env = {"PATH": "/usr/bin:/bin", "PYTHON": "echo"}  # print the command line instead of running it
    result = subprocess.run(
        ["bash", str(REPO / "scripts/run_eval_cpu.sh"), str(tmp_path), "a.ckpt", "--batch_size", "3"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0
    assert f"--pretrain_ckpt {ckpt} --batch_size 3" in result.stdout
    assert (tmp_path / "eval.log").read_text() == result.stdout
