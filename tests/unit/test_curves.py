"""src/curves.py and tools/plot_curves.py: CSV round trip, append on resume, PNGs produced."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.curves import (
    CurveLogger,
    loss_per_frame,
    plot_comparison,
    plot_curves,
    read_curve,
    smooth_ema,
    summarize_run,
)
from tools.plot_curves import main as plot_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fill_run(run_dir: Path, steps: int = 60, epochs: int = 3, with_val: bool = True, scale: float = 1.0) -> None:
    log = CurveLogger(run_dir)
    rng = np.random.default_rng(0)
    per_epoch = steps // epochs
    for step in range(1, steps + 1):
        loss = scale * (100.0 * np.exp(-step / 20) + 5 + rng.normal(0, 2))
        log.log_step(step, (step - 1) // per_epoch + 1, loss, 1e-4 * 0.9**step, wall_s=0.5 * step)
        if with_val and step % per_epoch == 0:
            epoch = step // per_epoch
            log.log_eval(epoch, step, wer=90.0 / epoch, cer=40.0 / epoch, wall_s=0.5 * step + 0.1)


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # axes, text and lines, not an empty canvas


def test_rows_round_trip(tmp_path: Path) -> None:
    log = CurveLogger(tmp_path / "run")
    log.log_step(1, 1, 123.456789, 3e-4, wall_s=1.5)
    log.log_step(2, 1, 99.5, 2.5e-4, wall_s=2.25)
    log.log_eval(1, 2, wer=87.5, cer=40.125, loss=50.0, wall_s=3.0)
    log.log_eval(2, 4, wer=80.0, cer=30.0, wall_s=4.0)
    lines = (tmp_path / "run" / "train_curve.csv").read_text().splitlines()
    assert lines == ["step,epoch,loss,lr,wall_s,frames", "1,1,123.45679,0.0003,1.500,", "2,1,99.5,0.00025,2.250,"]
    val_lines = (tmp_path / "run" / "val_curve.csv").read_text().splitlines()
    assert val_lines == ["epoch,step,wall_s,loss,wer,cer", "1,2,3.000,50,87.5,40.125", "2,4,4.000,,80,30"]
    train = read_curve(tmp_path / "run" / "train_curve.csv")
    np.testing.assert_allclose(train["loss"], [123.45679, 99.5])
    np.testing.assert_array_equal(train["step"], [1, 2])
    val = read_curve(tmp_path / "run" / "val_curve.csv")
    assert val["loss"][0] == 50.0 and np.isnan(val["loss"][1])
    np.testing.assert_array_equal(val["wer"], [87.5, 80.0])


def test_reopen_appends_and_wall_clock_continues(tmp_path: Path) -> None:
    run = tmp_path / "run"
    CurveLogger(run).log_step(1, 1, 10.0, 1e-3, wall_s=100.0)
    resumed = CurveLogger(run)
    assert resumed.wall_s() >= 100.0
    resumed.log_step(2, 1, 9.0, 1e-3)
    train = read_curve(run / "train_curve.csv")
    np.testing.assert_array_equal(train["step"], [1, 2])
    assert train["wall_s"][1] >= 100.0
    assert (run / "train_curve.csv").read_text().count("step,epoch") == 1


def test_truncated_last_row_is_skipped_and_next_row_starts_clean(tmp_path: Path) -> None:
    run = tmp_path / "run"
    CurveLogger(run).log_step(1, 1, 10.0, 1e-3, wall_s=1.0)
    with open(run / "train_curve.csv", "a") as f:
        f.write("2,1,9.")  # crash in the middle of a row
    CurveLogger(run).log_step(3, 1, 8.0, 1e-3, wall_s=3.0)
    train = read_curve(run / "train_curve.csv")
    np.testing.assert_array_equal(train["step"], [1, 3])


def test_loss_per_frame_falls_where_the_per_clip_loss_rises(tmp_path: Path) -> None:
    """SortaGrad: longer clips later make the per-clip loss rise while the per-frame loss falls."""
    log = CurveLogger(tmp_path)
    for step, (loss, frames) in enumerate([(100.0, 50.0), (120.0, 80.0), (150.0, 150.0)], start=1):
        log.log_step(step, 1, loss, 1e-3, wall_s=float(step), frames=frames)
    log.log_eval(1, 3, wer=80.0, cer=45.5, wall_s=4.0)
    per_frame, label = loss_per_frame(read_curve(tmp_path / "train_curve.csv"))
    np.testing.assert_allclose(per_frame, [2.0, 1.5, 1.0])
    assert label == "CTC loss per output frame"
    summary = summarize_run(tmp_path)
    assert summary.startswith("3 steps: ctc loss per output frame 2.000 -> 1.000")
    assert "WER 80.0% CER 45.5%" in summary


def test_wrong_header_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "train_curve.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="train_curve.csv:1: expected header"):
        CurveLogger(tmp_path)


def test_smooth_ema() -> None:
    np.testing.assert_allclose(smooth_ema(np.array([1.0, 2.0, 3.0]), 0.0), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(smooth_ema(np.full(5, 7.0), 0.9), np.full(5, 7.0))  # debiased: no warm-up dip
    out = smooth_ema(np.array([0.0, 10.0, np.nan, 10.0]), 0.5)
    assert np.isfinite(out).all() and out[2] == out[1]


def test_plot_curves_png(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fill_run(run)
    out = plot_curves(run)
    assert out == run / "curves.png"
    assert_png(out)


def test_plot_curves_without_validation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fill_run(run, with_val=False)
    assert (run / "val_curve.csv").read_text().strip() == "epoch,step,wall_s,loss,wer,cer"
    assert_png(plot_curves(run, tmp_path / "a.png"))
    (run / "val_curve.csv").unlink()
    assert_png(plot_curves(run, tmp_path / "b.png"))
    with pytest.raises(FileNotFoundError, match="train_curve.csv"):
        plot_curves(tmp_path / "empty")


def test_plot_comparison_and_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill_run(tmp_path / "aug")
    fill_run(tmp_path / "base", scale=1.3)
    fill_run(tmp_path / "noval", with_val=False, scale=0.8)
    runs = {"aug": tmp_path / "aug", "base": tmp_path / "base", "noval": tmp_path / "noval"}
    assert_png(plot_comparison(runs, tmp_path / "cmp.png"))

    assert plot_main([str(tmp_path / "aug")]) == 0
    assert_png(tmp_path / "aug" / "curves.png")
    out = tmp_path / "plots" / "cmp_cli.png"
    assert plot_main([str(tmp_path / "aug"), "--compare", f"base={tmp_path / 'base'}", "--out", str(out)]) == 0
    assert_png(out)
    assert plot_main([str(tmp_path / "aug"), "--compare", f"base={tmp_path / 'base'}"]) == 0
    assert_png(tmp_path / "aug" / "comparison.png")
    assert "comparison.png" in capsys.readouterr().out
    assert plot_main([str(tmp_path / "aug"), "--compare", "nameonly"]) == 1
    assert plot_main([str(tmp_path / "missing")]) == 1
    assert "train_curve.csv" in capsys.readouterr().err
