"""Labels and transcripts: load labels.json, clean and encode text. Blank is the last label."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

BLANK = "_"


def load_labels(path: str | Path) -> list[str]:
    """Read labels.json: a JSON list of single characters whose last entry is the CTC blank '_'."""
    path = Path(path)
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"labels file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(labels, list) or not all(isinstance(c, str) and len(c) == 1 for c in labels):
        raise ValueError(f"{path}: expected a JSON list of single characters")
    if len(set(labels)) != len(labels):
        raise ValueError(f"{path}: duplicate labels")
    if labels[-1] != BLANK:
        raise ValueError(f"{path}: the blank '{BLANK}' must be the last label (CTC blank index = len-1)")
    return labels


def clean_transcript(text: str) -> str:
    """Upper-case, turn the typographic apostrophe into ', and fold runs of white space to one space."""
    return " ".join(text.replace("\u2019", "'").upper().split())


def unknown_chars(text: str, labels: list[str]) -> Counter:
    """Characters of `text` that are not labels (the blank counts as unknown in a transcript)."""
    allowed = set(labels[:-1])
    return Counter(c for c in text if c not in allowed)


def encode(text: str, labels: list[str]) -> list[int]:
    """Map a cleaned transcript to label ids. Id 0 (the apostrophe) is a real id, never dropped.

    Raises:
        ValueError: the text holds a character outside the labels.
    """
    index = {c: i for i, c in enumerate(labels[:-1])}
    try:
        return [index[c] for c in text]
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the labels") from None
