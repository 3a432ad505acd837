"""Plot learning curves of a run directory (train_curve.csv / val_curve.csv) to a PNG.

Usage:
    python tools/plot_curves.py RUN_DIR [--out PNG]
    python tools/plot_curves.py RUN_DIR --compare no_aug=runs/base aug=runs/aug [--out PNG]
    python tools/plot_curves.py RUN_DIR --summary

With --summary: also print one line of what the run reached (loss per frame first -> last, last validation).
Without --compare: loss per step and WER/CER per epoch of RUN_DIR (default RUN_DIR/curves.png).
With --compare: RUN_DIR (named after its folder) and each NAME=DIR run side by side, loss and WER against
wall time (default RUN_DIR/comparison.png).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.curves import plot_comparison, plot_curves, summarize_run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Plot learning curves from a run directory.")
    parser.add_argument("run_dir", type=Path, help="run directory holding train_curve.csv")
    parser.add_argument("--out", type=Path, default=None, help="output PNG path")
    parser.add_argument(
        "--compare", nargs="+", default=[], metavar="NAME=DIR", help="other runs to draw next to RUN_DIR"
    )
    parser.add_argument("--summary", action="store_true", help="also print what the run reached")
    return parser.parse_args(argv)


def parse_compare(items: list[str]) -> dict[str, Path]:
    """['name=dir', ...] -> {name: Path(dir)}; a malformed or repeated name raises ValueError."""
    runs: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--compare expects NAME=DIR, got {item!r}")
        if name in runs:
            raise ValueError(f"--compare: run name {name!r} given twice")
        runs[name] = Path(path)
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    try:
        if args.compare:
            runs = {args.run_dir.resolve().name: args.run_dir, **parse_compare(args.compare)}
            if len(runs) != len(args.compare) + 1:
                raise ValueError(f"--compare: a run is named {args.run_dir.resolve().name!r} like RUN_DIR")
            out = plot_comparison(runs, args.out or args.run_dir / "comparison.png")
        else:
            out = plot_curves(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    if args.summary:
        print(f"reached: {summarize_run(args.run_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
