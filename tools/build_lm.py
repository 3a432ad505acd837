"""Build an ARPA n-gram LM (interpolated modified Kneser-Ney) from training text, so beam search with an LM can be
run and tested offline. Real runs use the LibriSpeech LM (openslr.org/11) instead.

    python tools/build_lm.py --text sentences.txt --out lm/3gram.arpa [--order 3]
    python tools/build_lm.py --manifest data/libri_train_manifest.csv --out lm/train3.arpa.gz

Lines are upper-cased and their white space folded (as transcripts are); a line holding a character outside
labels.json is skipped with a count, since the acoustic model could never spell it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.ngram import build_kneser_ney
from src.text import load_labels
from tools.common import REPO_ROOT


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build an ARPA n-gram language model (modified Kneser-Ney)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", type=Path, help="text file, one sentence per line")
    source.add_argument("--manifest", type=Path, help="training manifest (CSV or JSON): its transcripts")
    parser.add_argument("--out", type=Path, required=True, help="ARPA file to write (.gz: compressed)")
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--labels_path", default=str(REPO_ROOT / "labels.json"))
    return parser.parse_args(argv)


def read_sentences(lines: Iterable[str], labels: list[str], where: str) -> tuple[list[list[str]], int, Counter]:
    """Cleaned sentences (lists of words), the number of lines skipped and the characters that made them skipped."""
    from src.text import clean_transcript, unknown_chars

    sentences, skipped, bad = [], 0, Counter()
    for line in lines:
        text = clean_transcript(line)
        if not text:
            continue
        unknown = unknown_chars(text.replace(" ", ""), labels)
        if unknown:
            bad.update(unknown)
            skipped += 1
            continue
        sentences.append(text.split())
    if not sentences:
        raise ValueError(f"{where}: no usable sentences")
    return sentences, skipped, bad


def source_lines(args: argparse.Namespace) -> tuple[list[str], str]:
    if args.text is not None:
        if not args.text.is_file():
            raise FileNotFoundError(f"text file not found: {args.text}")
        return args.text.read_text(encoding="utf-8").splitlines(), str(args.text)
    from src.manifest import read_manifest

    return [s.read_text() for s in read_manifest(args.manifest)], str(args.manifest)


def main(argv=None) -> int:
    args = parse_args(argv)

    if args.order < 1:
        print(f"error: --order must be >= 1, got {args.order}", file=sys.stderr)
        return 2
    try:
        lines, where = source_lines(args)
        sentences, skipped, bad = read_sentences(lines, load_labels(args.labels_path), where)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if skipped:
        chars = dict(bad.most_common(10))
        print(f"skipped {skipped} lines with characters outside the labels: {chars}", file=sys.stderr)
    model = build_kneser_ney(sentences, args.order)
    path = model.write_arpa(args.out)
    counts = ", ".join(f"{n + 1}-grams {len(level)}" for n, level in enumerate(model.entries))
    print(f"wrote {path}: order {args.order}, {len(sentences)} sentences, {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
