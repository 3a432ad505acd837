"""Time to accuracy on recorded speech: train the small config on FSDD from scratch, test WER after every epoch.

Usage:
    python bench/time_to_accuracy.py [--minutes 30] [--augment off|on|both] [--fsdd-dir DIR] [--config JSON]
                                     [--out-dir DIR] [--target-wer 5] [--noise on|off]

Each run is `train.py --config CONFIG` on FSDD train with FSDD test as the validation manifest, in its own
process and run directory (`OUT_DIR/aug_off`, `OUT_DIR/aug_on`; an old run there is deleted first). The run's
`val_curve.csv` and `train_curve.csv` give the table: epoch, wall time (seconds since the trainer started,
evaluation included), mean training loss of the epoch, test WER and CER (greedy, percent). Training stops
between epochs when the next epoch would not finish inside the budget (and is interrupted if it runs past it).
`--augment on` switches on speed/volume perturbation and SpecAugment, plus noise injection from white, pink and
brown noise synthesised into `OUT_DIR/noise` (`--noise off` leaves it out); `--augment both` trains without and
then with augmentation, prints both curves side by side and draws `OUT_DIR/comparison.png`.
The load average is sampled during each run: other processes on a shared CPU slow every number here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
NOISE_SECONDS = 5.0
POLL_S = 2.0


@dataclass
class RunResult:
    """One finished training run: per-epoch rows and the machine load seen while it ran."""

    name: str
    run_dir: Path
    rows: list[tuple[int, float, float, float, float]]  # (epoch, wall_s, mean train loss, WER %, CER %)
    returncode: int
    stopped_by_budget: bool
    loads: list[float] = field(default_factory=list)  # 1-minute load averages sampled during the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="FSDD time-to-accuracy benchmark of the small configuration.")
    parser.add_argument("--fsdd-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "fsdd")
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "fsdd_small.json")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget of each training run")
    parser.add_argument("--augment", choices=("off", "on", "both"), default="off")
    parser.add_argument("--noise", choices=("on", "off"), default="on", help="noise injection in augmented runs")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "runs" / "time_to_accuracy")
    parser.add_argument("--target-wer", type=float, default=5.0, help="report when test WER (%%) first drops below")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value", help="passed to train.py")
    return parser.parse_args(argv)


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), scaled to peak 0.5.

    Returns:
        (n,) float32.
    """
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]  # keep the DC bin finite; it is removed below anyway
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n)
    noise -= noise.mean()
    return (0.5 * noise / np.abs(noise).max()).astype(np.float32)


def write_noise_dir(folder: Path, sample_rate: int, seed: int = 0) -> Path:
    """Write white.wav, pink.wav and brown.wav (NOISE_SECONDS each) into `folder`; returns the folder."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        noise = colored_noise(int(NOISE_SECONDS * sample_rate), exponent, rng)
        sf.write(str(folder / f"{name}.wav"), noise, sample_rate)
    return folder


def augmentation_overrides(on: bool, noise_dir: Path | None) -> list[str]:
    """--set values that switch the lab's augmentations on or all off (whatever the config file says)."""
    noise = str(noise_dir) if (on and noise_dir is not None) else ""
    return [
        f"DataConfig.AugmentationConfig.speed_volume_perturb={on}",
        f"DataConfig.AugmentationConfig.spec_augment={on}",
        f"DataConfig.AugmentationConfig.noise_dir={noise}",
    ]


def epoch_rows(run_dir: Path) -> list[tuple[int, float, float, float, float]]:
    """(epoch, wall_s, mean training loss, WER, CER) per evaluated epoch, from the run's curve CSVs."""
    from src.curves import TRAIN_FILE, VAL_FILE, read_curve

    if not (run_dir / VAL_FILE).is_file():
        return []
    val = read_curve(run_dir / VAL_FILE)
    train = read_curve(run_dir / TRAIN_FILE) if (run_dir / TRAIN_FILE).is_file() else {}
    rows = []
    columns = (val.get(name, []) for name in ("epoch", "wall_s", "wer", "cer"))
    for epoch, wall, wer, cer in zip(*columns):
        losses = train["loss"][train["epoch"] == epoch] if train else np.array([])
        losses = losses[np.isfinite(losses)]
        rows.append((int(epoch), float(wall), float(losses.mean()) if losses.size else float("nan"), wer, cer))
    return rows


def _stop(proc: subprocess.Popen) -> None:
    """Ask the trainer to stop (on SIGINT it finishes the step and saves a checkpoint); kill it if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _report_new(name: str, rows: list, shown: int) -> None:
    for epoch, wall, loss, wer, cer in rows[shown:]:
        line = f"[{name}] epoch {epoch}: wall {wall:7.1f} s  loss {loss:7.4f}  WER {wer:6.2f}  CER {cer:6.2f}"
        print(line, flush=True)


def run_training(name: str, cmd: list[str], run_dir: Path, budget_s: float) -> RunResult:
    """Run train.py, follow its val_curve.csv, and stop it between epochs when the budget would be overrun."""
    log_path = run_dir.parent / f"{name}.stdout.log"
    loads: list[float] = []
    stopped, shown, started = False, 0, time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                loads.append(os.getloadavg()[0])
                rows = epoch_rows(run_dir)
                _report_new(name, rows, shown)
                shown = len(rows)
                walls = [0.0] + [r[1] for r in rows]
                next_end = walls[-1] + max(np.diff(walls)) if len(walls) > 1 else 0.0
                if (len(walls) > 1 and next_end > budget_s) or time.monotonic() - started > budget_s:
                    stopped = True
                    _stop(proc)
        finally:
            _stop(proc)
    rows = epoch_rows(run_dir)
    _report_new(name, rows, shown)
    if proc.returncode != 0 and not stopped:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{name}: train.py exited with {proc.returncode}; end of {log_path}:\n{tail}")
    return RunResult(name, run_dir, rows, proc.returncode, stopped, loads)


def train_command(args: argparse.Namespace, run_dir: Path, augment: bool, noise_dir: Path | None) -> list[str]:
    """The train.py command line of one run."""
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), "--config", str(args.config)]
    cmd += ["--train_manifest", str(args.fsdd_dir / "train.csv"), "--val_manifest", str(args.fsdd_dir / "test.csv")]
    cmd += ["--save_dir", str(run_dir)]
    for item in augmentation_overrides(augment, noise_dir) + list(args.set):
        cmd += ["--set", item]
    return cmd


def time_to_target(rows: list, target: float) -> tuple[int, float] | None:
    """(epoch, wall_s) of the first evaluation with WER below `target`, or None."""
    return next(((e, w) for e, w, _, wer, _ in rows if wer < target), None)


def format_table(results: list[RunResult]) -> str:
    """A Markdown table with the runs side by side: epoch, then wall/loss/WER/CER of each run."""
    head = "| epoch | " + " | ".join(f"{r.name} wall (s) | loss | WER % | CER %" for r in results) + " |"
    lines = [head, "|" + "---:|" * (1 + 4 * len(results))]
    for epoch in sorted({row[0] for r in results for row in r.rows}):
        cells = [str(epoch)]
        for r in results:
            row = next((x for x in r.rows if x[0] == epoch), None)
            cells += [f"{row[1]:.0f}", f"{row[2]:.4f}", f"{row[3]:.2f}", f"{row[4]:.2f}"] if row else ["", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_summary(results: list[RunResult], target: float) -> str:
    """One line per run: time to the target WER, best WER, why it stopped, and the load average seen."""
    lines = []
    for r in results:
        hit = time_to_target(r.rows, target)
        reach = f"WER never below {target:g}%"
        if hit:
            reach = f"WER < {target:g}% first at epoch {hit[0]}, {hit[1]:.0f} s ({hit[1] / 60:.1f} min)"
        best = min((row[3] for row in r.rows), default=float("nan"))
        load = f"load avg (1 min) mean {np.mean(r.loads):.2f}, max {np.max(r.loads):.2f}" if r.loads else "no load"
        why = "stopped by the time budget" if r.stopped_by_budget else "train.py finished"
        lines.append(f"- {r.name}: {reach}; best WER {best:.2f}%; {len(r.rows)} epochs, {why}; {load}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: make `src` importable
        sys.path.insert(0, str(REPO_ROOT))
    from src.curves import plot_comparison, plot_curves

    args.fsdd_dir, args.config, args.out_dir = args.fsdd_dir.resolve(), args.config.resolve(), args.out_dir.resolve()
    for path in (args.fsdd_dir / "train.csv", args.fsdd_dir / "test.csv", args.config):
        if not path.is_file():
            print(f"error: not found: {path}", file=sys.stderr)
            return 1
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.augment]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    noise_dir = None
    if True in variants and args.noise == "on":
        noise_dir = write_noise_dir(args.out_dir / "noise", 16000)
    results = []
    for augment in variants:
        name = "aug_on" if augment else "aug_off"
        run_dir = args.out_dir / name
        shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: old curves would resume the wall clock
        print(f"[{name}] training for up to {args.minutes:g} min; log: {args.out_dir / name}.stdout.log", flush=True)
        result = run_training(name, train_command(args, run_dir, augment, noise_dir), run_dir, args.minutes * 60)
        plot_curves(run_dir)
        results.append(result)
    table, summary = format_table(results), format_summary(results, args.target_wer)
    print("\n" + table + "\n\n" + summary)
    report = args.out_dir / "summary.md"
    report.write_text(f"{table}\n\n{summary}\n", encoding="utf-8")
    if len(results) > 1:
        png = plot_comparison({r.name: r.run_dir for r in results}, args.out_dir / "comparison.png")
        print(f"comparison plot: {png}")
    print(f"curves: {', '.join(str(r.run_dir / 'curves.png') for r in results)}; summary: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
