"""Build the Free Spoken Digit Dataset (FSDD) at 16 kHz with transcripts and manifests.

Usage:
    python tools/fsdd.py --out-dir data/fsdd --source-dir free-spoken-digit-dataset   # offline
    python tools/fsdd.py --out-dir data/fsdd --download                               # fetch the archive

Output layout (the same as the shared copy):
    wav/{digit}_{speaker}_{index}.wav   16 kHz mono 16-bit signed PCM
    txt/{digit}_{speaker}_{index}.txt   the digit as an uppercase word plus a newline, e.g. "SEVEN"
    train.csv, test.csv                 `wav/NAME.wav,txt/NAME.txt` per line, no header
    train.json, test.json               JSON lines {"audio_filepath": "wav/NAME.wav", "text": ..., "duration": s}
    README.md                           source, licence (CC BY-SA 4.0) and counts
Manifests are sorted by duration ascending, ties by name. Split (the official one): take index 0-4 -> test,
5-49 -> train. Conversion: `sox -R IN -r 16000 -c 1 -b 16 -e signed-integer OUT rate -v` when sox is on PATH
(-R only fixes the dither seed so re-runs are reproducible), else scipy polyphase resampling.
Re-running is safe: every file is written to a temporary name and renamed, finished wavs are skipped, and the
download is kept in OUT/.download/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.atomic import atomic_write, write_text
from src.audio import load_audio
from tools.common import ToolError, check_member_name, download_file

COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
ARCHIVE_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{COMMIT}.zip"
SAMPLE_RATE = 16000
TEST_INDICES = range(5)  # the official FSDD split: takes 0-4 of every digit and speaker are the test set
DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
NAME_RE = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<index>[0-9]+)\.wav$")
SOX_ARGS = ("-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer")

logger = logging.getLogger("fsdd")


def parse_name(name: str) -> tuple[int, str, int]:
    """'7_theo_12.wav' -> (7, 'theo', 12); any other name raises ValueError."""
    m = NAME_RE.match(name)
    if m is None:
        raise ValueError(f"not an FSDD recording name ({{digit}}_{{speaker}}_{{index}}.wav): {name}")
    return int(m["digit"]), m["speaker"], int(m["index"])


def split_of(name: str) -> str:
    """'train' or 'test' from the take index in the file name."""
    return "test" if parse_name(name)[2] in TEST_INDICES else "train"


def find_recordings(source_dir: Path) -> list[Path]:
    """The `{digit}_{speaker}_{index}.wav` files of an FSDD checkout or of its recordings/ folder, sorted."""
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source directory not found: {source_dir}")
    folder = source_dir / "recordings" if (source_dir / "recordings").is_dir() else source_dir
    wavs = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".wav")
    bad = [p.name for p in wavs if NAME_RE.match(p.name) is None]
    if bad:
        raise ValueError(f"{folder}: {len(bad)} wav files are not named {{digit}}_{{speaker}}_{{index}}.wav: {bad[:5]}")
    if not wavs:
        raise FileNotFoundError(f"no FSDD recordings (*.wav) in {folder}")
    return wavs


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file and rename it over `path`; skipped when the content is already there."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_text(path, text)


def _convert_sox(src: Path, dst: Path) -> None:
    cmd = ["sox", "-R", str(src), *SOX_ARGS, str(dst), "rate", "-v"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sox failed on {src} (exit {proc.returncode}): {proc.stderr.strip()}")
    if proc.stderr.strip():  # e.g. "rate clipped 2 samples" on a few loud takes
        logger.debug("sox on %s: %s", src.name, proc.stderr.strip())


def _convert_scipy(src: Path, dst: Path) -> None:
    audio = load_audio(src, SAMPLE_RATE)  # mono float32, polyphase-resampled to 16 kHz
    sf.write(str(dst), np.clip(audio, -1.0, 32767 / 32768), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def is_converted(path: Path) -> bool:
    """Whether `path` is already a 16 kHz mono 16-bit PCM wav (atomic writes mean it is complete)."""
    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError):
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16"


def convert(src: Path, dst: Path, use_sox: bool) -> bool:
    """Convert one recording to a 16 kHz mono 16-bit wav at `dst`; False when `dst` was already done."""
    if is_converted(dst):
        return False
    # keep_suffix: sox picks the output format from the name
    atomic_write(dst, lambda tmp: (_convert_sox if use_sox else _convert_scipy)(src, tmp), keep_suffix=True)
    return True


def duration_s(path: Path) -> float:
    """Exact duration from the wav header: frames / sample rate."""
    info = sf.info(str(path))
    return info.frames / info.samplerate


def json_line(name: str, duration: float) -> str:
    """One train.json/test.json line for the stem `name`, duration rounded to 0.1 ms as in the shared copy."""
    text = DIGIT_WORDS[parse_name(name + ".wav")[0]]
    return json.dumps({"audio_filepath": f"wav/{name}.wav", "text": text, "duration": round(duration, 4)}) + "\n"


def manifest_lines(out_dir: Path, names: list[str]) -> tuple[str, str]:
    """CSV and JSON-lines manifest text for `names` (stems), sorted by duration ascending, ties by name."""
    rows = sorted((duration_s(out_dir / "wav" / f"{n}.wav"), n) for n in names)
    csv_text = "".join(f"wav/{n}.wav,txt/{n}.txt\n" for _, n in rows)
    json_text = "".join(json_line(n, d) for d, n in rows)
    return csv_text, json_text


def download(url: str, dest: Path) -> Path:
    """Fetch `url` to `dest` (tools.common.download_file, one attempt); an existing `dest` is reused."""
    if dest.is_file():
        logger.info("using the archive downloaded before: %s", dest)
        return dest
    logger.info("downloading %s", url)
    try:
        download_file(url, dest, retries=0)
    except ToolError as err:
        dest.with_name(dest.name + ".part").unlink(missing_ok=True)
        raise RuntimeError(f"{err}. Fetch the archive by hand and pass --source-dir (unzipped) instead.") from err
    return dest


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out_path: Path) -> None:
    with zf.open(info) as src, open(out_path, "wb") as out:
        shutil.copyfileobj(src, out)


def extract_recordings(archive: Path, dest: Path) -> Path:
    """Extract the `recordings/*.wav` members of an FSDD zip into `dest` (flat); returns `dest`.

    Every member name is checked before anything is written. A `.done` marker makes re-runs skip this.
    """
    done = dest / ".done"
    if done.is_file():
        return dest
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{archive} is not a valid zip archive ({err}); delete it and download again") from err
    with zf:
        members = [(info, check_member_name(info.filename, archive)) for info in zf.infolist()]
        wanted = [
            (info, path)
            for info, path in members
            if not info.is_dir() and len(path.parts) >= 2 and path.parts[-2] == "recordings" and path.suffix == ".wav"
        ]
        if not wanted:
            raise ValueError(f"{archive} holds no recordings/*.wav files; is it the FSDD archive?")
        dest.mkdir(parents=True, exist_ok=True)
        for info, path in wanted:
            atomic_write(dest / path.name, lambda tmp, info=info: _extract_member(zf, info, tmp), durable=False)
    write_text(done, f"{len(wanted)} recordings from {archive.name}\n")
    return dest


README_TEXT = """# FSDD - Free Spoken Digit Dataset (16 kHz copy)

Built by `tools/fsdd.py`. Source: the Free Spoken Digit Dataset by Zohar Jackson (Jakobovski) and the FSDD
contributors, https://github.com/Jakobovski/free-spoken-digit-dataset . Licence: CC BY-SA 4.0
(https://creativecommons.org/licenses/by-sa/4.0/); this adapted copy (resampled audio, transcripts, manifests)
is shared under the same licence with attribution to the FSDD authors.

- Audio: `wav/{{digit}}_{{speaker}}_{{index}}.wav`, resampled from 8 kHz to 16 kHz mono 16-bit PCM ({method}).
- Transcripts: `txt/NAME.txt`, the digit as an uppercase English word.
- Split: take indices 0-4 -> test, 5-49 -> train (the official FSDD split).
- Manifests: `train.csv`/`test.csv` (`wav/NAME.wav,txt/NAME.txt`, no header) and `train.json`/`test.json`
  (JSON lines with audio_filepath, text, duration), sorted by duration ascending, ties by name.

| split | files | seconds |
|-------|------:|--------:|
{rows}
"""


def build(source_dir: Path, out_dir: Path, use_sox: bool, jobs: int) -> dict[str, int]:
    """Convert every recording, write transcripts, manifests and README; returns files per split."""
    recordings = find_recordings(source_dir)
    for sub in ("wav", "txt"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    logger.info("%d recordings in %s; converting with %s", len(recordings), source_dir, "sox" if use_sox else "scipy")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        converted = sum(pool.map(lambda p: convert(p, out_dir / "wav" / p.name, use_sox), recordings))
    logger.info("converted %d files, %d already done", converted, len(recordings) - converted)
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for path in recordings:
        write_text_atomic(out_dir / "txt" / f"{path.stem}.txt", DIGIT_WORDS[parse_name(path.name)[0]] + "\n")
        splits[split_of(path.name)].append(path.stem)
    rows = []
    for split, names in splits.items():
        if not names:
            logger.warning("the %s split is empty", split)
        csv_text, json_text = manifest_lines(out_dir, names)
        write_text_atomic(out_dir / f"{split}.csv", csv_text)
        write_text_atomic(out_dir / f"{split}.json", json_text)
        seconds = sum(duration_s(out_dir / "wav" / f"{n}.wav") for n in names)
        rows.append(f"| {split} | {len(names)} | {seconds:.1f} |")
    method = "SoX `rate -v`" if use_sox else "scipy polyphase resampling"
    write_text_atomic(out_dir / "README.md", README_TEXT.format(method=method, rows="\n".join(rows)))
    return {split: len(names) for split, names in splits.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build 16 kHz FSDD wavs, transcripts and manifests.")
    parser.add_argument("--out-dir", type=Path, required=True, help="output folder (created)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--source-dir", type=Path, help="local FSDD checkout or its recordings/ folder")
    source.add_argument("--download", action="store_true", help="download the FSDD archive (see --url)")
    parser.add_argument("--url", default=ARCHIVE_URL, help="archive URL for --download (default: pinned commit)")
    parser.add_argument(
        "--resampler", choices=("auto", "sox", "scipy"), default="auto", help="auto = sox when on PATH, else scipy"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel conversions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    have_sox = shutil.which("sox") is not None
    if args.resampler == "sox" and not have_sox:
        print("error: --resampler sox but sox is not on PATH", file=sys.stderr)
        return 1
    use_sox = args.resampler == "sox" or (args.resampler == "auto" and have_sox)
    try:
        source = args.source_dir
        if args.download:
            cache = args.out_dir / ".download"
            name = PurePosixPath(args.url.split("?")[0]).name or "fsdd.zip"
            source = extract_recordings(download(args.url, cache / name), cache / "recordings")
        counts = build(source, args.out_dir, use_sox, max(1, args.jobs))
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out_dir}: train {counts['train']} files, test {counts['test']} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
