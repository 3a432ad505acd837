"""bench/train_speed.py end to end on a tiny network: the README's quick command, a record in the history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mindspore")
pytestmark = [pytest.mark.mindspore, pytest.mark.slow]  # four fresh processes, each compiling a graph

REPO = Path(__file__).resolve().parents[2]


def test_tiny_run_prints_the_table_and_appends_a_record(tmp_path):
    history = tmp_path / "history.jsonl"
    cmd = [sys.executable, "bench/train_speed.py", "--hidden", "8", "--layers", "1", "--cases", "1x1", "--steps",
           "1", "--sweep", "1,0.5", "--sweep_batch", "1", "--history", str(history)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    (record,) = [json.loads(line) for line in history.read_text().splitlines()]
    sides = record["sides"]
    assert sides[0] == "project" and record["host"]["flags"].keys() == {"AVX2", "AVX-512", "AVX512_BF16", "AMX"}
    for side in sides:
        case = record["cases"][0][side]
        assert case["step_s"] > 0 and case["peak_rss_gb"] > 0.05 and len(case["step_times_s"]) == 1
        assert case["audio_s_per_s"] == pytest.approx(1.0 / case["step_s"])
        sweep = record["sweep"][side]
        assert sweep["lengths"] == [1.0, 0.5] and len(sweep["rss_gb"]) == 2
        assert sweep["final_over_longest"] == pytest.approx(sweep["rss_gb"][1] / sweep["rss_gb"][0])
    assert "1 x 1 s" in proc.stdout and "final / after longest" in proc.stdout
