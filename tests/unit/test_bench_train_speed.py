"""bench/flops.py against a hand count, and the pure parts of bench/train_speed.py (no MindSpore, no torch)."""

from __future__ import annotations

import sys

import pytest

from bench import train_speed as ts
from bench.flops import forward_macs, train_step_flops
from src import shapes


def test_forward_macs_hand_count_tiny_config():
    # batch 1, 3 frames, hidden 2, one layer. conv1: 161 bins -> (161 + 40 - 41) // 2 + 1 = 81, time
    # (3 + 10 - 11) // 2 + 1 = 2; conv2: 81 -> (81 + 20 - 21) // 2 + 1 = 41, time (2 + 10 - 11) // 1 + 1 = 2.
    macs = forward_macs(batch=1, frames=3, hidden=2, layers=1)
    assert macs["conv1"] == 32 * 81 * 2 * (1 * 41 * 11)  # out channels x F' x T' x (C_in x kF x kT)
    assert macs["conv2"] == 32 * 41 * 2 * (32 * 21 * 11)
    assert macs["lstm"] == 4 * (1312 + 2) * 2 * 2 * 2  # gates x (input + hidden) x hidden x directions x steps
    assert macs["fc"] == 2 * 2 * 29  # steps x hidden x classes
    assert train_step_flops(1, 3, 2, 1) == 6 * (2_337_984 + 19_396_608 + 42_048 + 116)


def test_later_layers_take_hidden_inputs_and_batch_scales_linearly():
    one, two = forward_macs(1, 3, 2, 1), forward_macs(1, 3, 2, 2)
    assert two["lstm"] - one["lstm"] == 4 * (2 + 2) * 2 * 2 * 2
    assert forward_macs(5, 3, 2, 2) == {k: 5 * v for k, v in two.items()}


def test_full_model_step_matches_the_output_length_formula():
    # lab model, 8 x 10 s: 1001 frames -> 501 steps; 86.5 M LSTM weights x 2 FLOPs x steps x batch dominate.
    assert shapes.output_length(1001) == 501
    macs = forward_macs(8, 1001, 1024, 5)
    lstm_weights = 2 * 4 * 1024 * ((1312 + 1024) + 4 * (1024 + 1024))
    assert macs["lstm"] == lstm_weights * 501 * 8
    assert train_step_flops(8, 1001, 1024, 5) == pytest.approx(2.336e12, rel=1e-3)


def test_parse_cases_and_lengths():
    assert ts.parse_cases("8x10, 20x15") == [(8, 10.0), (20, 15.0)]
    assert ts.parse_lengths("2,4,17") == [2.0, 4.0, 17.0] and ts.parse_lengths("") == []
    for bad in ("8", "8x", "0x10", "ax10", "8x-1"):
        with pytest.raises(ValueError, match="--cases"):
            ts.parse_cases(bad)
    for bad in ("2,x", "2,2", "0,3"):
        with pytest.raises(ValueError, match="--sweep"):
            ts.parse_lengths(bad)


def test_bad_cases_give_a_usage_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ts.parse_args(["--cases", "8by10"])
    assert exit_info.value.code == 2
    assert "'8by10' is not BATCHxSECONDS" in capsys.readouterr().err


def test_sweep_runs_the_longest_first():
    assert ts.sweep_order([2, 4, 17, 6]) == [17, 2, 4, 6]


def test_cpu_info_reads_model_and_flags():
    text = "processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: fpu avx2 avx512f amx_tile\n"
    info = ts.cpu_info(text)
    assert info["cpu"] == "Some CPU 9000"
    assert info["flags"] == {"AVX2": True, "AVX-512": True, "AVX512_BF16": False, "AMX": True}


def test_synthetic_batch_shapes():
    features, lengths, labels, label_lengths = ts.synthetic_batch(3, 2.0)
    assert features.shape == (3, 1, 161, 201) and features.dtype.name == "float32"
    assert lengths.tolist() == [201] * 3 and label_lengths.tolist() == [30] * 3
    assert labels.shape == (3, 30) and labels.min() >= 0 and labels.max() <= 27  # never the blank (28)


def test_case_table_ratios():
    case = {"batch": 8, "seconds": 10.0}
    case["project"] = {"step_s": 10.0, "audio_s_per_s": 8.0, "gflop_per_s": 233.6, "peak_rss_gb": 6.0}
    case["torch"] = {"step_s": 8.0, "audio_s_per_s": 10.0, "gflop_per_s": 292.0, "peak_rss_gb": 4.0}
    row = ts.case_table([case])[-1]
    assert row.split()[-2:] == ["0.80", "1.50"]  # speed project/torch, memory project/torch
    del case["torch"]
    assert ts.case_table([case])[-1].split()[-2:] == ["-", "-"]


def test_child_result_is_read_from_its_last_result_line():
    code = "print('RESULT {\"a\": 1}'); print('RESULT {\"a\": 2}')"
    result = ts.run_child([sys.executable, "-c", code], timeout_s=60)
    assert result.failure == "" and result.data == {"a": 2}


def test_failing_child_reported_in_one_line():
    code = "import sys; print('RESULT {}'); sys.exit('no memory for you')"
    result = ts.run_child([sys.executable, "-c", code], timeout_s=60)
    assert result.data == {} and result.failure == "failed (rc 1); last stderr line: no memory for you"


def test_child_over_time_is_killed_and_reported():
    result = ts.run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=1)
    assert result.failure.startswith("timed out after 1 s (rc -9)")
    assert result.wall_s < 10


def test_child_over_memory_limit_is_killed_and_reported():
    code = "import time; block = bytearray(b'x') * (400 * 2**20); time.sleep(30)"  # 400 MB, touched
    result = ts.run_child([sys.executable, "-c", code], timeout_s=60, mem_limit_gb=0.1)
    assert result.failure.startswith("killed at 0.1 GB RSS (--mem_limit_gb) (rc -9)")


def test_child_killed_by_a_signal_is_named():
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = ts.run_child([sys.executable, "-c", code], timeout_s=60)
    assert result.failure.startswith("killed by SIGKILL (out of memory?) (rc -9)")


def test_missing_torch_is_one_clear_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ts, "torch_available", lambda: "No module named 'torch'")
    history = tmp_path / "history.jsonl"
    assert ts.main(["--only", "torch", "--history", str(history)]) == 2  # nothing left to measure
    out = capsys.readouterr().out
    assert "PyTorch reference skipped: `import torch` failed (No module named 'torch'); install it with: pip" in out
    assert "CPU: " in out and "flags: AVX2 " in out
    assert not history.exists()


def test_killed_child_keeps_its_progress_lines():
    code = 'print(\'PROGRESS {"seconds": 17, "rss_gb": 3.5}\', flush=True); import time; time.sleep(30)'
    result = ts.run_child([sys.executable, "-c", code], timeout_s=2)
    assert result.failure.startswith("timed out") and result.progress == [{"seconds": 17, "rss_gb": 3.5}]
    assert result.max_rss_gb > 0


def test_sweep_table_shows_a_killed_side_up_to_where_it_got():
    sweeps = {
        "project": {"failure": "killed by SIGKILL (rc -9); last stderr line: x", "max_rss_seen_gb": 22.0,
                    "lengths": [4.0, 2.0], "rss_gb": [7.0, 11.0], "step_s": [9.0, 8.0]},
        "torch": {"lengths": [4.0, 2.0, 3.0], "rss_gb": [2.0, 2.0, 2.2], "final_over_longest": 1.1, "peak_rss_gb": 2.5},
    }  # fmt: skip
    rows = ts.sweep_table(sweeps, 2, [2.0, 4.0, 3.0])
    assert [row.split() for row in rows[2:]] == [
        ["4", "7.00", "2.00"], ["2", "11.00", "2.00"], ["3", "-", "2.20"],
        ["final", "/", "after", "longest", "-", "1.100"], ["peak", "RSS", "GB", "-", "2.50"],
    ]  # fmt: skip
    (line,) = ts.failure_lines([], sweeps)
    assert line == "project sweep: killed by SIGKILL (rc -9); last stderr line: x (largest RSS seen 22.00 GB)"


def test_load_line_warns_on_a_busy_host():
    assert (
        ts.load_line([{"max_load": 1.5}, {}], 2) == "host load while measuring: 1-min load average up to 1.5 on 2 CPUs"
    )
    assert "timings are unreliable" in ts.load_line([{"max_load": 9.5}], 2)
    assert ts.load_line([{}], 2) == "host load while measuring: unknown"
