"""bench/eval_speed.py end to end on a tiny network: every side and batch size measured, one record appended,
and the three implementations agree (ONNX on every clip, PyTorch on unpadded clips)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mindspore")
pytestmark = [pytest.mark.mindspore, pytest.mark.slow]  # seven fresh processes, each loading a framework

REPO = Path(__file__).resolve().parents[2]


def test_tiny_run_prints_the_table_and_appends_a_record(tmp_path):
    history = tmp_path / "history.jsonl"
    cmd = [sys.executable, "bench/eval_speed.py", "--hidden", "8", "--layers", "1", "--clips", "3", "--min_seconds",
           "1", "--max_seconds", "2", "--batches", "2,1", "--history", str(history)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.startswith("CPU: ") and "flags: AVX2 " in proc.stdout and "RTF" in proc.stdout
    (record,) = [json.loads(line) for line in history.read_text().splitlines()]
    sides = record["sides"]
    assert sides[:2] == ["project", "onnx"]
    audio_s = record["clips"]["audio_s"]
    assert len(record["clips"]["frames"]) == 3 and 3.0 <= audio_s <= 6.0
    for side in sides:
        for batch in ("2", "1"):
            got = record["results"][side][batch]
            assert got["rtf"] == pytest.approx(got["timed_s"] / audio_s) and got["peak_rss_gb"] > 0.05
    for batch in ("2", "1"):
        assert record["results"]["onnx"][batch]["same_greedy_as_project"] == 1.0
    if "torch" in sides:  # at batch 1 no clip is padded, so the unmasked reference must agree on every one
        assert record["results"]["torch"]["1"]["same_greedy_as_project"] == 1.0
