"""Benchmark LibriSpeech preparation throughput with 1 and 2 conversion workers, side by side, with their ratio.

Times `tools.librispeech.prepare` (archive check, flac -> wav conversion, manifests) into a fresh target per run.
Without --corpus-dir it first synthesizes a corpus with tools/make_sample_corpus.py (needs espeak-ng).

    python bench/prep_throughput.py --utterances 300
    python bench/prep_throughput.py --corpus-dir data/tarballs --files dev-clean.tar.gz
    python bench/prep_throughput.py --work-dir /dev/shm     # takes the disk out of the measurement
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/prep_throughput.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.librispeech import PrepOptions, prepare
from tools.make_sample_corpus import build_corpus


@dataclass(frozen=True)
class Measurement:
    """One timed preparation run."""

    workers: int
    seconds: float
    utterances: int
    audio_seconds: float

    @property
    def utt_per_second(self) -> float:
        """Utterances prepared per wall-clock second."""
        return self.utterances / self.seconds

    @property
    def audio_hours_per_minute(self) -> float:
        """Hours of audio prepared per wall-clock minute."""
        return (self.audio_seconds / 3600.0) / (self.seconds / 60.0)


def measure(tar_dir: Path, files: tuple[str, ...], workers: int, work_dir: Path, repeats: int) -> Measurement:
    """Prepare the tarballs `repeats` times into fresh targets with `workers` processes; keep the fastest run."""
    best = None
    for i in range(repeats):
        opts = PrepOptions(target_dir=work_dir / f"w{workers}-r{i}", tar_dir=tar_dir, files=files, num_workers=workers)
        start = time.perf_counter()
        result = prepare(opts)
        elapsed = time.perf_counter() - start
        run = Measurement(
            workers,
            elapsed,
            sum(r.converted for r in result.splits),
            sum(r.audio_seconds for r in result.splits),
        )
        if best is None or run.seconds < best.seconds:
            best = run
    return best


def print_table(runs: list[Measurement]) -> None:
    """The runs side by side, then each run's speed-up over the first."""
    print(f"{'workers':>7}  {'utterances':>10}  {'audio h':>8}  {'seconds':>8}  {'utt/s':>8}  {'audio h/min':>11}")
    for m in runs:
        print(
            f"{m.workers:>7}  {m.utterances:>10}  {m.audio_seconds / 3600:>8.3f}  {m.seconds:>8.2f}  "
            f"{m.utt_per_second:>8.1f}  {m.audio_hours_per_minute:>11.3f}"
        )
    for m in runs[1:]:
        print(f"ratio {m.workers} vs {runs[0].workers} workers: {runs[0].seconds / m.seconds:.2f}x")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Measure LibriSpeech preparation throughput per worker count.")
    p.add_argument("--corpus-dir", type=Path, help="folder with tarballs (default: synthesize one)")
    p.add_argument("--files", default="train-clean-100.tar.gz", help="comma list of tarballs to prepare")
    p.add_argument("--utterances", type=int, default=300, help="utterances to synthesize (without --corpus-dir)")
    p.add_argument("--workers", default="1,2", help="comma list of worker counts")
    p.add_argument("--repeats", type=int, default=2, help="runs per worker count; the fastest is kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, help="where targets are written (default: the system temp folder)")
    args = p.parse_args(argv)
    args.files = tuple(f.strip() for f in args.files.split(",") if f.strip())
    args.workers = [int(w) for w in args.workers.split(",")]
    if args.utterances < 1 or args.repeats < 1 or min(args.workers) < 1:
        p.error("--utterances, --repeats and every --workers count must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Synthesize (or take) a corpus, prepare it with each worker count, print the table."""
    args = parse_args(argv)
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prep-bench-", dir=args.work_dir) as tmp:
        tar_dir = args.corpus_dir
        if tar_dir is None:
            tar_dir = Path(tmp) / "tarballs"
            counts = {name[: -len(".tar.gz")]: args.utterances for name in args.files}
            start = time.perf_counter()
            build_corpus(tar_dir, counts, args.seed, max(args.workers))
            print(f"synthesized {sum(counts.values())} utterances in {time.perf_counter() - start:.1f} s")
        runs = [measure(tar_dir, args.files, w, Path(tmp) / "targets", args.repeats) for w in args.workers]
    print_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
