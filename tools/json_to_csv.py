"""Convert a deepspeech.pytorch JSON manifest into the lab's CSV manifest (`wav_path,txt_path` per line, no header).

Unlike the lab's version it parses the whole JSON document (the lab's one-document-per-line form works too),
overwrites the CSV atomically instead of appending to it, and writes absolute paths. Optionally it checks that every
file exists (--verify) and sorts the rows by audio duration (--sort, ties by path).

    python tools/json_to_csv.py --json data/libri_val_manifest.json --csv data/libri_val_manifest.csv --verify
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.atomic import write_text
from src.audio import audio_duration
from src.manifest import Sample, read_json_manifest


def manifest_rows(samples: list[Sample]) -> list[tuple[str, str]]:
    """(absolute wav path, absolute txt path) per sample, in manifest order.

    Raises:
        ValueError: a sample carries its text inline (NeMo style) and so has no transcript file to point at.
    """
    rows = []
    for s in samples:
        if s.txt_path is None:
            raise ValueError(f"{s.where}: sample has inline text and no transcript file; a CSV row needs one")
        rows.append((os.path.abspath(s.wav_path), os.path.abspath(s.txt_path)))
    return rows


def verify_samples(samples: list[Sample]) -> None:
    """Raise FileNotFoundError naming the first missing wav or transcript and the sample that refers to it."""
    for s in samples:
        for kind, path in (("audio", s.wav_path), ("transcript", s.txt_path)):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"{s.where}: {kind} file not found: {path}")


def sort_by_duration(samples: list[Sample]) -> list[Sample]:
    """Samples ordered by audio duration (read from each file's header), ties by wav path."""
    return sorted(samples, key=lambda s: (audio_duration(s.wav_path), str(s.wav_path)))


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write the rows to `path` through a temp file and a rename, replacing any earlier content."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    write_text(path, buf.getvalue())


def convert(json_path: Path, csv_path: Path, verify: bool = False, sort: bool = False) -> int:
    """Read the JSON manifest, optionally verify and sort it, write the CSV; returns the row count."""
    if csv_path.is_dir():
        raise IsADirectoryError(f"--csv {csv_path} is a directory; give the CSV file to write")
    if json_path.is_dir():
        raise IsADirectoryError(f"--json {json_path} is a directory; give the JSON manifest file")
    if not json_path.is_file():
        raise FileNotFoundError(f"manifest not found: {json_path}")
    samples = read_json_manifest(json_path)
    if not samples:
        raise ValueError(f"manifest {json_path} holds no samples")
    if verify:
        verify_samples(samples)
    if sort:
        samples = sort_by_duration(samples)
    rows = manifest_rows(samples)
    write_csv(csv_path, rows)
    return len(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Convert a JSON manifest into a `wav_path,txt_path` CSV manifest.")
    p.add_argument("--json", type=Path, required=True, help="deepspeech.pytorch JSON manifest (or JSON lines)")
    p.add_argument("--csv", type=Path, required=True, help="CSV to write (replaced if it exists)")
    p.add_argument("--verify", action="store_true", help="check that every wav and txt file exists")
    p.add_argument("--sort", action="store_true", help="sort rows by audio duration")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Convert; returns 2 with one `error:` line naming the file (and sample) on bad input."""
    args = parse_args(argv)
    try:
        count = convert(args.json, args.csv, verify=args.verify, sort=args.sort)
    except (OSError, ValueError) as err:  # AudioError is a ValueError, AtomicWriteError an OSError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.csv} ({count} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
