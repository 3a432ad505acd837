"""Learning curves: append-only CSV logs in the run directory, and PNG plots drawn from them on demand.

`train_curve.csv` has one row per logged step (step, epoch, loss, lr, wall_s, frames: the batch's mean output
frames per clip, so the plot can show the loss per frame) and `val_curve.csv` one row per evaluation (epoch, step,
wall_s, loss, wer, cer; loss may be empty). Each row is written and flushed on its own, so a crash loses nothing,
and reopening a run (resume) appends to the same files. wall_s counts seconds of training since the run first
started: on resume it continues from the last logged value.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path

import numpy as np

from src.atomic import atomic_write, write_text

logger = logging.getLogger(__name__)

TRAIN_FILE = "train_curve.csv"
VAL_FILE = "val_curve.csv"
TRAIN_COLUMNS = ("step", "epoch", "loss", "lr", "wall_s", "frames")
VAL_COLUMNS = ("epoch", "step", "wall_s", "loss", "wer", "cer")


def _fmt(value: float | None) -> str:
    """CSV cell: ints as ints, floats with 8 significant digits, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.8g}"


def _prepare(path: Path, columns: tuple[str, ...]) -> None:
    """Create `path` with a header, or check the header of an existing file and end it with a newline."""
    header = ",".join(columns)
    if not path.exists() or path.stat().st_size == 0:
        write_text(path, header + "\n")
        return
    with open(path, encoding="utf-8") as f:
        first = f.readline().rstrip("\r\n")
    if first != header:
        raise ValueError(f"{path}:1: expected header {header!r}, found {first!r}")
    with open(path, "rb") as f:
        f.seek(-1, 2)
        complete = f.read(1) == b"\n"
    if not complete:  # a crash cut the last row short: start the next row on a fresh line
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n")


def read_curve(path: str | Path) -> dict[str, np.ndarray]:
    """Read a curve CSV into float64 columns (empty cells -> NaN); malformed rows are skipped with a warning.

    Returns:
        column name -> (rows,) float64; all columns empty when the file holds only a header.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return {}
        rows = []
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                if len(row) != len(header):
                    raise ValueError(f"{len(row)} fields, expected {len(header)}")
                rows.append([float(c) if c.strip() else math.nan for c in row])
            except ValueError as err:
                logger.warning("%s:%d: skipping malformed curve row %r (%s)", path, line_no, row, err)
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    return {name: data[:, i] for i, name in enumerate(header)}


class CurveLogger:
    """Append training and validation rows to `run_dir/train_curve.csv` and `run_dir/val_curve.csv`."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.train_path = self.run_dir / TRAIN_FILE
        self.val_path = self.run_dir / VAL_FILE
        self._failed: set[Path] = set()
        _prepare(self.train_path, TRAIN_COLUMNS)
        _prepare(self.val_path, VAL_COLUMNS)
        self._wall_offset = self._last_wall_s()
        self._t0 = time.monotonic()

    def _last_wall_s(self) -> float:
        """The largest wall_s already logged (0 for a new run), so a resumed run's clock continues."""
        last = 0.0
        for path in (self.train_path, self.val_path):
            wall = read_curve(path).get("wall_s")
            if wall is not None and np.isfinite(wall).any():
                last = max(last, float(np.nanmax(wall)))
        return last

    def wall_s(self) -> float:
        """Seconds since the run started, counting earlier sessions of a resumed run."""
        return self._wall_offset + time.monotonic() - self._t0

    def _append(self, path: Path, cells: list[str]) -> None:
        # Open, write one line, close: the row is on disk (flushed) before training goes on. A failed write
        # (disk full) costs the row, never the run; it is logged once per file, and a row cut short is
        # skipped by read_curve and dropped by truncate_after.
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(",".join(cells) + "\n")
                f.flush()
        except OSError as err:
            if path not in self._failed:
                logger.error("curve row not saved to %s: %s (further failures for this file not logged)", path, err)
            self._failed.add(path)

    def log_step(
        self, step: int, epoch: int, loss: float, lr: float, wall_s: float | None = None, frames: float | None = None
    ) -> None:
        """Append one training row; wall_s defaults to `self.wall_s()`, frames (mean output frames) may be None."""
        wall = self.wall_s() if wall_s is None else wall_s
        cells = [_fmt(int(step)), _fmt(int(epoch)), _fmt(loss), _fmt(lr), f"{wall:.3f}", _fmt(frames)]
        self._append(self.train_path, cells)

    def log_eval(
        self,
        epoch: int,
        step: int,
        wer: float,
        cer: float,
        loss: float | None = None,
        wall_s: float | None = None,
    ) -> None:
        """Append one validation row (WER/CER in percent or fraction, as the caller reports them)."""
        wall = self.wall_s() if wall_s is None else wall_s
        cells = [_fmt(int(epoch)), _fmt(int(step)), f"{wall:.3f}", _fmt(loss), _fmt(wer), _fmt(cer)]
        self._append(self.val_path, cells)


def smooth_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); NaNs are skipped.

    Args:
        values: (n,) array.
        weight: in [0, 1); 0 returns the values, larger is smoother.
    Returns:
        (n,) float64.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out = np.full(len(values), np.nan)
    avg, norm = 0.0, 0.0
    for i, v in enumerate(np.asarray(values, dtype=np.float64)):
        if np.isfinite(v):
            avg = weight * avg + (1.0 - weight) * v
            norm = weight * norm + (1.0 - weight)
        out[i] = avg / norm if norm > 0 else np.nan
    return out


def _default_weight(n: int) -> float:
    """Smoothing that spans about 5% of the points (none for a handful of points)."""
    span = max(1.0, n / 20.0)
    return 1.0 - 1.0 / span


def _load_run(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    train_path, val_path = run_dir / TRAIN_FILE, run_dir / VAL_FILE
    if not train_path.is_file():
        raise FileNotFoundError(f"no {TRAIN_FILE} in run directory {run_dir}")
    train = read_curve(train_path)
    val = read_curve(val_path) if val_path.is_file() else {}
    return train, val


def _has_rows(curve: dict[str, np.ndarray], column: str) -> bool:
    return column in curve and bool(np.isfinite(curve[column]).any())


def _new_figure(n_panels: int, width: float):
    """A figure on the Agg canvas; pyplot and the global backend are left alone (safe in any process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 4.5))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


def _save(fig, out: Path) -> Path:
    """Render to a temporary sibling and rename (src.atomic); raises AtomicWriteError naming `out`."""
    fig.tight_layout()
    fmt = out.suffix.lstrip(".").lower() or "png"
    return atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format=fmt))


def _draw_loss(ax, x: np.ndarray, loss: np.ndarray, raw_label: str, smooth_label: str, color: str) -> None:
    """Raw loss as a faint line, its moving average on top in the same colour."""
    ax.plot(x, loss, alpha=0.3, linewidth=0.8, color=color, label=raw_label)
    ax.plot(x, smooth_ema(loss, _default_weight(len(loss))), linewidth=1.8, color=color, label=smooth_label)


def loss_per_frame(train: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """The training loss divided by the batch's mean output frames where logged, else the loss; and its axis label.

    The CTC loss is a per-clip sum, so it grows with clip length (SortaGrad feeds longer clips later); per frame
    it falls when the model learns.
    """
    if _has_rows(train, "frames"):
        return train["loss"] / train["frames"], "CTC loss per output frame"
    return train["loss"], "CTC loss"


def summarize_run(run_dir: str | Path) -> str:
    """One line saying what a run reached: steps, first and last smoothed loss (per frame), last validation."""
    train, val = _load_run(Path(run_dir))
    if not _has_rows(train, "loss"):
        return f"{run_dir}: no training steps logged"
    loss, label = loss_per_frame(train)
    smooth = smooth_ema(loss, _default_weight(len(loss)))
    line = f"{int(train['step'][-1])} steps: {label.lower()} {smooth[0]:.3f} -> {smooth[-1]:.3f} (smoothed)"
    if _has_rows(val, "cer"):
        line += f"; validation after epoch {int(val['epoch'][-1])}: WER {val['wer'][-1]:.1f}% CER {val['cer'][-1]:.1f}%"
        line += f" (best CER {np.nanmin(val['cer']):.1f}%)"
    return line


def plot_curves(run_dir: str | Path, out_png: str | Path | None = None) -> Path:
    """Draw one run's training loss (per output frame when logged) per step and WER/CER per epoch into a PNG.

    Without validation rows only the loss panel is drawn.

    Returns:
        the PNG path (default `run_dir/curves.png`).
    """
    run_dir = Path(run_dir)
    out = Path(out_png) if out_png is not None else run_dir / "curves.png"
    train, val = _load_run(run_dir)
    has_val = _has_rows(val, "wer") or _has_rows(val, "cer")
    fig, axes = _new_figure(2 if has_val else 1, 12 if has_val else 7)
    ax = axes[0]
    ylabel = "CTC loss"
    if _has_rows(train, "loss"):
        loss, ylabel = loss_per_frame(train)
        _draw_loss(ax, train["step"], loss, "loss", "smoothed", "C0")
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no training rows yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="step", ylabel=ylabel, title="training loss")
    ax.grid(True, alpha=0.3)
    if has_val:
        ax = axes[1]
        for column, marker in (("wer", "o"), ("cer", "s")):
            if _has_rows(val, column):
                ax.plot(val["epoch"], val[column], marker=marker, label=column.upper())
        ax.set(xlabel="epoch", ylabel="error rate (%)", title="validation WER / CER", ylim=(0, None))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"learning curves: {run_dir.name}")
    return _save(fig, out)


def try_plot_curves(run_dir: str | Path) -> Path | None:
    """`plot_curves` for the end of a training run: any failure is logged with the path and the reason, never raised.

    The plot is a convenience drawn from CSVs that stay on disk (tools/plot_curves.py redraws it), so a full disk
    or a matplotlib problem must not turn a finished run into a failed one.
    """
    try:
        return plot_curves(run_dir)
    except Exception as err:  # noqa: BLE001 - logged with its reason; the training result is what matters
        logger.error("learning curves not drawn in %s: %s: %s", run_dir, type(err).__name__, err)
        return None


def plot_comparison(run_dirs: dict[str, Path], out_png: str | Path) -> Path:
    """Draw several runs side by side: training loss and validation WER against wall time.

    Args:
        run_dirs: legend name -> run directory (each must hold train_curve.csv).
    Returns:
        the PNG path.
    """
    if not run_dirs:
        raise ValueError("plot_comparison needs at least one run")
    runs = {name: _load_run(Path(d)) for name, d in run_dirs.items()}
    fig, (ax_loss, ax_wer) = _new_figure(2, 13)
    for i, (name, (train, val)) in enumerate(runs.items()):
        color = f"C{i}"
        if _has_rows(train, "loss"):
            _draw_loss(ax_loss, train["wall_s"], train["loss"], "_nolegend_", name, color)
        if _has_rows(val, "wer"):
            ax_wer.plot(val["wall_s"], val["wer"], marker="o", color=color, label=name)
        else:
            logger.info("run %s has no validation WER to plot", name)
    ax_loss.set(xlabel="wall time (s)", ylabel="CTC loss (smoothed)", title="training loss")
    ax_wer.set(xlabel="wall time (s)", ylabel="WER", title="validation WER")
    for ax in (ax_loss, ax_wer):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle("run comparison: " + " vs ".join(runs))
    return _save(fig, Path(out_png))


def truncate_after(run_dir: str | Path, step: int) -> int:
    """Drop curve rows logged after global step `step` (a resumed run re-does them); returns rows dropped."""
    dropped = 0
    for name, column in ((TRAIN_FILE, "step"), (VAL_FILE, "step")):
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if not lines:
            continue
        index = lines[0].split(",").index(column)
        kept = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            try:
                keep = int(float(cells[index])) <= step
            except (ValueError, IndexError):
                keep = False  # a row cut short by a crash
            kept.append(line) if keep else None
            dropped += not keep
        write_text(path, "\n".join(kept) + "\n")
    return dropped
