"""tests/conftest.py: under DS2_REQUIRE_MINDSPORE=1 (CI) a skipped test or module is a failure, not a silent skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = """
import pytest
{module_skip}

def test_passes():
    pass

def test_skips():
    pytest.skip("no data here")
"""


def run_pytest(tmp_path: Path, require: bool, module_skip: str = "") -> subprocess.CompletedProcess:
    """Run pytest with our conftest as a plugin on a sample file outside the repo."""
    (tmp_path / "test_sample.py").write_text(SAMPLE.format(module_skip=module_skip), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DS2_REQUIRE_MINDSPORE"}
    if require:
        env["DS2_REQUIRE_MINDSPORE"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml")]
    cmd += ["--rootdir", str(REPO), "-p", "tests.conftest", str(tmp_path / "test_sample.py")]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_skip_is_a_failure_in_ci(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, require=True)
    assert run.returncode == 1, run.stdout
    assert "1 failed, 1 passed" in run.stdout
    assert "skipped under DS2_REQUIRE_MINDSPORE=1" in run.stdout and "no data here" in run.stdout


def test_module_skip_is_an_error_in_ci(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, require=True, module_skip='pytest.importorskip("no_such_module_ds2")')
    assert run.returncode != 0, run.stdout
    assert "skipped under DS2_REQUIRE_MINDSPORE=1" in run.stdout


def test_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, require=False)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 1 skipped" in run.stdout
