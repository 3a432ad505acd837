"""The launchers run the Python that has MindSpore (the lab's image: `python3` is old, `python` has MindSpore), and
setup.sh stops with one line naming the Python it found when MindSpore 2.10 has no wheel for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REAL = sys.executable


def fake(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


def picked(bin_dir: Path, **env: str) -> str:
    script = f'source {REPO / "scripts" / "common.sh"}; echo "$PYTHON"'
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin", **env})  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_python_with_mindspore_wins_over_python3_without(tmp_path):
    fake(tmp_path, "python3", f'exec {REAL} -S "$@"')  # -S: no site-packages, so no MindSpore
    fake(tmp_path, "python", f'exec {REAL} "$@"')
    assert picked(tmp_path) == "python"


def test_python3_is_kept_when_it_has_mindspore(tmp_path):
    fake(tmp_path, "python3", f'exec {REAL} "$@"')
    fake(tmp_path, "python", "exit 1")
    assert picked(tmp_path) == "python3"


def test_without_mindspore_a_supported_version_is_preferred(tmp_path):
    fake(tmp_path, "python3", "echo 3.6.9; exit 1")  # the lab image's system python3
    fake(tmp_path, "python", f'exec {REAL} -S "$@"')
    assert picked(tmp_path) == "python"


def test_the_override_is_respected(tmp_path):
    fake(tmp_path, "python", f'exec {REAL} "$@"')
    assert picked(tmp_path, PYTHON="/opt/my/python") == "/opt/my/python"


def test_setup_names_the_python_found_and_what_to_install(tmp_path):
    fake(tmp_path, "oldpy", '[[ "$*" == *platform* ]] && echo 3.9.0; exit 1')  # like the lab's Python 3.9
    run = subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin", "PYTHON": "oldpy"})  # fmt: skip
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "oldpy is Python 3.9.0" in run.stderr and "3.10-3.12" in run.stderr and "PYTHON=" in run.stderr


def test_nohup_redirect_to_the_log_writes_each_line_once(tmp_path):
    fake(tmp_path, "fakepy", 'echo "eval ran with $#"')
    (tmp_path / "x.ckpt").write_bytes(b"")
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PYTHON": "fakepy"}
    launcher = REPO / "scripts" / "run_eval_cpu.sh"
    subprocess.run(["bash", "-c", f"bash {launcher} x.ckpt > eval.log 2>&1"], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "eval.log").read_text().count("eval ran with") == 1  # the lab's form: one copy, not two
    run = subprocess.run(["bash", str(launcher), "x.ckpt"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "eval ran with" in run.stdout and "eval ran with" in (tmp_path / "eval.log").read_text()  # tee
