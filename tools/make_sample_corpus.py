"""Make a small LibriSpeech-format corpus of synthetic English speech (espeak-ng), for tests, demos and benchmarks.

Each split becomes `{out}/{split}.tar.gz`, laid out exactly like LibriSpeech:
    LibriSpeech/{split}/{speaker}/{chapter}/{speaker}-{chapter}-{utt:04d}.flac   16 kHz mono 16-bit flac
    LibriSpeech/{split}/{speaker}/{chapter}/{speaker}-{chapter}.trans.txt        `{utt_id} TRANSCRIPT` lines
Sentences come from a ~50-word vocabulary (a few with apostrophes) and a handful of templates, so a small model can
learn them and an n-gram LM over them helps; `--grammar digits` says two or three digit words instead (the quick
start's corpus: a 10-word vocabulary learnt within minutes). Each speaker has its own espeak-ng voice, pitch and
speed. Everything follows from --seed: the same seed and espeak-ng version give byte-identical tarballs.
"""

from __future__ import annotations

import argparse
import gzip
import io
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.atomic import atomic_write, write_text
from src.audio import load_audio

SAMPLE_RATE = 16000
DEFAULT_SPLITS = ("train-clean-100", "dev-clean", "test-clean")
MIN_SECONDS, MAX_SECONDS = 1.5, 5.0
VOICES = ("en-us", "en-gb", "en+m3", "en+f2", "en-us+f3", "en-gb-scotland", "en+m1", "en+f4")
# Slot words; a template's slots are filled independently, left to right.
SLOTS = {
    "<S>": ("I", "YOU", "WE", "THEY"),
    "<N>": ("DOG", "CAT", "CAR", "HOUSE", "BOOK", "TREE", "BALL", "DOOR", "BIRD", "BOAT"),
    "<A>": ("RED", "BIG", "SMALL", "GOOD", "NEW", "GREEN", "HAPPY"),
    "<V>": ("SEE", "LIKE", "WANT", "FIND", "OPEN", "HAVE", "NEED"),
    "<T>": ("TODAY", "NOW", "AGAIN", "AT HOME", "IN THE PARK"),
}
TEMPLATES = (
    "<S> <V> THE <A> <N> <T>",
    "<S> DON'T <V> THE <N>",
    "IT'S A <A> <N> <T>",
    "I'M LOOKING FOR MY <N> <T>",
    "THAT'S YOUR <A> <N>",
    "THE <N> IS VERY <A> <T>",
    "<S> CAN'T <V> THE <A> <N>",
    "MY <N> AND YOUR <N> ARE <A>",
)
# The "digits" grammar: two or three spoken digits, a 10-word vocabulary a tiny model learns within minutes.
DIGIT_SLOTS = {"<D>": ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")}
DIGIT_TEMPLATES = ("<D> <D>", "<D> <D> <D>")
GRAMMARS = {"sentences": (SLOTS, TEMPLATES), "digits": (DIGIT_SLOTS, DIGIT_TEMPLATES)}
ESPEAK_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng` (macOS)"


@dataclass(frozen=True)
class Utterance:
    """One planned utterance: who says what, and how espeak-ng renders it."""

    speaker: int
    chapter: int
    index: int
    text: str
    voice: str
    speed: int
    pitch: int

    @property
    def utt_id(self) -> str:
        """LibriSpeech's `{speaker}-{chapter}-{utt:04d}`."""
        return f"{self.speaker}-{self.chapter}-{self.index:04d}"


@dataclass(frozen=True)
class CorpusItem:
    """One utterance ready for a tarball: its id (`{speaker}-{chapter}-{utt:04d}`), transcript and flac bytes."""

    utt_id: str
    text: str
    flac: bytes


def vocabulary(grammar: str = "sentences") -> list[str]:
    """Every word the grammar can produce, sorted."""
    slots, templates = GRAMMARS[grammar]
    words = {w for options in slots.values() for phrase in options for w in phrase.split()}
    words.update(w for t in templates for w in t.split() if w not in slots)
    return sorted(words)


def make_sentence(rng: random.Random, grammar: str = "sentences") -> str:
    """One upper-case sentence: a random template with each slot filled by a random word."""
    slots, templates = GRAMMARS[grammar]
    return " ".join(rng.choice(slots[tok]) if tok in slots else tok for tok in rng.choice(templates).split())


def plan_split(split: str, n: int, seed: int, grammar: str = "sentences") -> list[Utterance]:
    """The utterances of one split, a pure function of (split, n, seed, grammar).

    Speakers (4 in train-* splits, 2 elsewhere) get ids derived from the split name, so splits do not share
    speakers; each speaker has one chapter, one voice, one pitch and a base speed that varies a little per utterance.
    """
    rng = random.Random(f"{seed}:{split}")
    n_speakers = max(1, min(4 if split.startswith("train") else 2, n))
    base = 100 + (zlib.crc32(split.encode("utf-8")) % 800) * 10
    speakers = [
        (base + i, rng.choice(VOICES), rng.randint(30, 70), rng.randrange(140, 181, 10)) for i in range(n_speakers)
    ]
    plan = []
    for i in range(n):
        speaker, voice, pitch, speed = speakers[i % n_speakers]
        speed += rng.choice((-10, 0, 10))
        text = make_sentence(rng, grammar)
        plan.append(Utterance(speaker, speaker * 10 + 1, i // n_speakers, text, voice, speed, pitch))
    return plan


def write_sentences(path: Path, sentences: Sequence[str]) -> None:
    """Write one sentence per line (LM training text), atomically."""
    write_text(path, "".join(s + "\n" for s in sentences))


def write_split_sentences(path: Path, split: str, n: int, seed: int) -> list[str]:
    """Write all sentences of a split (as `plan_split` makes them) to `path`; no audio is synthesized."""
    sentences = [u.text for u in plan_split(split, n, seed)]
    write_sentences(path, sentences)
    return sentences


def find_espeak() -> str:
    """The espeak-ng executable, or a FileNotFoundError that says how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError(f"espeak-ng not found on PATH; {ESPEAK_HINT}")
    return exe


def synthesize(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Speak `text` with espeak-ng; returns (samples,) float32 at 16 kHz. A failure surfaces espeak's stderr."""
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        wav = Path(tmp) / "out.wav"
        # Lower case, so espeak reads words rather than spelling out capitalised ones as acronyms.
        cmd = [find_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text.lower()]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng failed (exit {proc.returncode}) on {text!r}: {proc.stderr.strip()}")
        return load_audio(wav, SAMPLE_RATE)


def render_flac(utt: Utterance) -> bytes:
    """Synthesize one utterance, fit it to 1.5-5 s and encode it as 16 kHz 16-bit flac.

    Too long: spoken again 30 words/min faster (twice at most). Too short: silence padded on both sides.
    """
    for speed in (utt.speed, utt.speed + 30, utt.speed + 60):
        audio = synthesize(utt.text, utt.voice, speed, utt.pitch)
        if len(audio) <= MAX_SECONDS * SAMPLE_RATE:
            break
    else:
        raise ValueError(f"{utt.utt_id}: {utt.text!r} lasts over {MAX_SECONDS} s even at {speed} words/min")
    short = int(MIN_SECONDS * SAMPLE_RATE) - len(audio)
    if short > 0:
        audio = np.pad(audio, (short // 2, short - short // 2))
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def render_item(utt: Utterance) -> CorpusItem:
    """`render_flac` packed with the utterance's id and transcript (what the worker pool maps over)."""
    return CorpusItem(utt.utt_id, utt.text, render_flac(utt))


def _tar_add(tf: tarfile.TarFile, name: str, data: bytes | None = None) -> None:
    """Add a folder (data None) or a file with fixed owner, mode and mtime, so tarballs are reproducible."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tf.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))


def _add_chapter(tf: tarfile.TarFile, speaker_dir: str, chapter: str, items: Sequence[CorpusItem]) -> None:
    """Add a speaker's chapter folder: its flacs, then `{speaker}-{chapter}.trans.txt`."""
    folder = f"{speaker_dir}/{chapter}"
    _tar_add(tf, speaker_dir + "/")
    _tar_add(tf, folder + "/")
    for item in items:
        _tar_add(tf, f"{folder}/{item.utt_id}.flac", item.flac)
    lines = "".join(f"{item.utt_id} {item.text}\n" for item in items)
    _tar_add(tf, f"{folder}/{speaker_dir.rsplit('/', 1)[1]}-{chapter}.trans.txt", lines.encode("utf-8"))


def write_librispeech_tarball(path: Path, split: str, items: Sequence[CorpusItem]) -> None:
    """Write `items` as a LibriSpeech tarball (folders, flacs, one trans.txt per chapter), atomically.

    Utterance ids must be `{speaker}-{chapter}-{utt}`; gzip and tar headers carry no time stamps.
    """
    chapters: dict[tuple[str, str], list[CorpusItem]] = {}
    for item in items:
        speaker, chapter, _ = item.utt_id.split("-")
        chapters.setdefault((speaker, chapter), []).append(item)

    def produce(tmp: Path) -> None:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tf,
        ):
            _tar_add(tf, "LibriSpeech/")
            _tar_add(tf, f"LibriSpeech/{split}/")
            for (speaker, chapter), group in sorted(chapters.items()):
                _add_chapter(tf, f"LibriSpeech/{split}/{speaker}", chapter, sorted(group, key=lambda it: it.utt_id))

    atomic_write(path, produce)


def build_corpus(
    out_dir: Path, counts: dict[str, int], seed: int, num_workers: int, grammar: str = "sentences"
) -> dict[str, list[Utterance]]:
    """Synthesize every split in `counts` (split -> utterances) and write `{out_dir}/{split}.tar.gz`."""
    find_espeak()  # fail before starting workers
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = {split: plan_split(split, n, seed, grammar) for split, n in counts.items()}
    with multiprocessing.Pool(num_workers) as pool:
        for split, plan in plans.items():
            items = pool.map(render_item, plan, chunksize=4)
            write_librispeech_tarball(out_dir / f"{split}.tar.gz", split, items)
    return plans


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description="Synthesize a small LibriSpeech-format corpus with espeak-ng.")
    p.add_argument("--out-dir", type=Path, required=True, help="where {split}.tar.gz files go")
    p.add_argument("--splits", default=",".join(DEFAULT_SPLITS), help="comma list of split names")
    p.add_argument("--train-utterances", type=int, default=40, help="per train-* split")
    p.add_argument("--eval-utterances", type=int, default=10, help="per other split")
    p.add_argument("--utterances", type=int, help="per split, overriding the two above")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grammar", choices=sorted(GRAMMARS), default="sentences", help="sentences (~50 words) or digits")
    p.add_argument("--num-workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--sentences-out", type=Path, help="also write the sentences of --sentences-split here")
    p.add_argument("--sentences-split", help="split whose sentences --sentences-out gets (default: the first)")
    args = p.parse_args(argv)
    args.splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not args.splits or any(not s.replace("-", "").isalnum() for s in args.splits):
        p.error(f"--splits: expected a comma list of names like train-clean-100, got {args.splits}")
    if min(args.train_utterances, args.eval_utterances, args.utterances or 1, args.num_workers) < 1:
        p.error("utterance counts and --num-workers must be >= 1")
    if args.sentences_split is not None and args.sentences_split not in args.splits:
        p.error(f"--sentences-split {args.sentences_split} is not one of --splits")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the corpus; returns 1 when espeak-ng is missing or fails."""
    args = parse_args(argv)
    counts = {
        s: args.utterances or (args.train_utterances if s.startswith("train") else args.eval_utterances)
        for s in args.splits
    }
    try:
        plans = build_corpus(args.out_dir, counts, args.seed, args.num_workers, args.grammar)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for split, plan in plans.items():
        print(f"wrote {args.out_dir / (split + '.tar.gz')} ({len(plan)} utterances)")
    if args.sentences_out is not None:
        split = args.sentences_split or args.splits[0]
        write_sentences(args.sentences_out, [u.text for u in plans[split]])
        print(f"wrote {args.sentences_out} ({len(plans[split])} sentences of {split})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
