"""Manifest reading: the lab's CSV (`wav_path,txt_path` per line) and deepspeech.pytorch JSON manifests.

Accepted forms, detected from the content:
- CSV: one `wav_path,txt_path` row per line, no header; relative paths are relative to the CSV's folder.
- deepspeech.pytorch JSON: `{"root_path": R, "samples": [{"wav_path": ..., "transcript_path": ...}, ...]}`;
  relative sample paths are relative to R (or to the JSON's folder when R is missing).
- JSON lines: one such document per line (the lab's line-by-line form; documents are concatenated), or
  one sample per line as `{"audio_filepath": ..., "text": ...}` (NeMo style; the text is inline).
Every sample remembers where it came from (`file:line`) so errors can name it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One utterance: its audio, its transcript (a txt file, or inline text) and its manifest position."""

    wav_path: Path
    txt_path: Path | None
    text: str | None
    where: str

    def read_text(self) -> str:
        """The raw transcript: the inline text, or the txt file's content."""
        if self.text is not None:
            return self.text
        assert self.txt_path is not None  # constructor invariant, not user input
        try:
            return self.txt_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.where}: transcript file not found: {self.txt_path}") from None
        except IsADirectoryError:
            raise ValueError(f"{self.where}: transcript path is a directory, not a file: {self.txt_path}") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"{self.where}: transcript {self.txt_path} is not UTF-8 text: {err}") from None
        except OSError as err:
            raise ValueError(f"{self.where}: cannot read transcript {self.txt_path}: {err.strerror or err}") from None


def read_text_file(path: Path) -> str:
    """A manifest's text. A UTF-8 byte-order mark is dropped (editors on Windows add one); other encodings are
    refused naming the file and line, since guessing one would corrupt paths and transcripts silently.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text ({err.reason} at byte {err.start}); save the manifest as UTF-8"
        ) from None


def _resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p)


def read_csv_manifest(path: Path) -> list[Sample]:
    """Parse the lab's CSV manifest; malformed rows raise ValueError naming file and line."""
    samples = []
    for line_no, row in enumerate(csv.reader(io.StringIO(read_text_file(path), newline="")), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"{path}:{line_no}: expected 'wav_path,txt_path', got {','.join(row)!r}")
        wav, txt = (c.strip() for c in row)
        samples.append(Sample(_resolve(wav, path.parent), _resolve(txt, path.parent), None, f"{path}:{line_no}"))
    return samples


def _samples_from_document(doc: dict, base: Path, where: str) -> list[Sample]:
    """Samples of one deepspeech.pytorch document, or of one NeMo-style line."""
    if "audio_filepath" in doc:
        if not isinstance(doc.get("text"), str):
            raise ValueError(f"{where}: sample has no 'text' string")
        return [Sample(_resolve(doc["audio_filepath"], base), None, doc["text"], where)]
    if not isinstance(doc.get("samples"), list):
        raise ValueError(f"{where}: expected a JSON object with a 'samples' list (deepspeech.pytorch manifest)")
    root = _resolve(doc["root_path"], base) if doc.get("root_path") else base
    samples = []
    for i, s in enumerate(doc["samples"]):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("wav_path"), str)
            or not isinstance(s.get("transcript_path"), str)
        ):
            raise ValueError(f"{where}: sample {i} needs 'wav_path' and 'transcript_path' strings")
        samples.append(
            Sample(_resolve(s["wav_path"], root), _resolve(s["transcript_path"], root), None, f"{where} sample {i}")
        )
    return samples


def read_json_manifest(path: Path) -> list[Sample]:
    """Parse a whole JSON document, or JSON lines (one document or one sample per line)."""
    text = read_text_file(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        return _samples_from_document(doc, path.parent, str(path))
    samples = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{line_no}: not valid JSON: {err.msg}") from None
        if not isinstance(item, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object")
        samples.extend(_samples_from_document(item, path.parent, f"{path}:{line_no}"))
    return samples


def read_manifest(path: str | Path) -> list[Sample]:
    """Read any supported manifest; the form is told by the first non-blank character ('{' means JSON)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"manifest {path} is a directory, not a file")
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")  # a UTF-8 byte-order mark, then blanks
    if head.startswith(b"{"):
        samples = read_json_manifest(path)
    else:
        samples = read_csv_manifest(path)
    if not samples:
        raise ValueError(f"manifest {path} holds no samples")
    return samples
