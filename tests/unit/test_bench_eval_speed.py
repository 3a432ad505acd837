"""The pure parts of bench/eval_speed.py (no MindSpore, no torch): the fixed clip set, batching, arguments."""

from __future__ import annotations

import pytest

from bench import eval_speed as E


def test_clip_set_is_fixed_and_within_bounds() -> None:
    frames = E.clip_frames(20, 5.0, 15.0)
    assert frames == E.clip_frames(20, 5.0, 15.0)
    assert len(frames) == 20 and all(501 <= n <= 1501 for n in frames)
    assert E.audio_seconds(frames) == pytest.approx(sum(n - 1 for n in frames) / 100)
    assert E.clip_features(3, 120).shape == (161, 120)
    assert (E.clip_features(3, 120) == E.clip_features(3, 120)).all()


def test_eval_batches_are_eval_py_batches_without_padding_rows() -> None:
    frames = E.clip_frames(7, 1.0, 9.0)
    batches = E.eval_batches(frames, 3)
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(7)) and [frames[i] for i in flat] == sorted(frames)


def test_summary_and_table() -> None:
    data = {"timed_s": 2.0, "first_pass_s": 5.0, "peak_rss_gb": 1.5, "hashes": ["a", "b", "c", "d"]}
    out = E.summarise(data, 10.0, ["a", "x", "c", "d"])
    assert out["rtf"] == 0.2 and out["audio_s_per_s"] == 5.0 and out["same_greedy_as_project"] == 0.75
    assert "hashes" not in out
    rows = E.table({"project": {"20": out}}, [20, 1], ["project"])
    assert rows[2].split()[:3] == ["20", "0.200", "5.0"] and rows[3].split() == ["1", "-", "-", "-", "-", "-"]


@pytest.mark.parametrize("argv", [["--batches", "0"], ["--batches", "2,2"], ["--batches", "x"], ["--clips", "0"],
                                  ["--min_seconds", "9", "--max_seconds", "3"]])  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        E.parse_args(argv)
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()[-1]) > 0
