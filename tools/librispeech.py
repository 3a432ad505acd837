"""Prepare LibriSpeech: tarballs -> 16 kHz wav + txt per split -> deepspeech.pytorch JSON manifests.

`python tools/librispeech.py` with no options uses the lab's defaults (deepspeech.pytorch's): target
`LibriSpeech_dataset/`, the tarballs found anywhere below it, so both the lab manual's layout
(`LibriSpeech_dataset/{train,val,test_clean,test_other}/*.tar.gz`) and one flat folder work. Works offline from the
tarballs it finds; with --download it fetches the missing ones (into the manual's layout, or into --tar-dir;
resumable with HTTP Range requests, checked against Content-Length and openslr's md5 sums). Safe to re-run at any
point, even after SIGKILL:
- every wav/txt is written under a temporary name and renamed, so a file that exists is complete, and stale
  temporary files of a killed run are removed before a split is resumed;
- a split whose `.done` marker exists is not converted again; otherwise finished files are kept and the rest converted;
- manifests are rebuilt from the files on disk and written atomically.
Every archive is checked member by member before anything is written: absolute paths, `..`, links and device files
are refused. Output paths are built from validated utterance ids, never from member names.

Layout under --target-dir:
    {split}/wav/{utt}.wav   16 kHz mono 16-bit PCM
    {split}/txt/{utt}.txt   the upper-case transcript
    {split}/.done           JSON: the utterance count and the files skipped
    libri_train_manifest.json (train-*), libri_val_manifest.json (dev-clean + dev-other),
    libri_test_clean_manifest.json, libri_test_other_manifest.json   (in --manifest-dir, default the target)
Each manifest is one JSON document on one line, as deepspeech.pytorch writes it, so a reader that parses the file
line by line (the lab's json_to_csv.py) and one that parses the whole file both read it.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import sys
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile as sf
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.atomic import write_bytes
from src.audio import AudioError, audio_duration, resample, to_mono
from src.text import clean_transcript
from tools.common import (
    ToolError,
    UnsafeArchiveError,
    check_tar_member,
    download_file,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DEFAULT_FILES = (
    "train-clean-100.tar.gz",
    "dev-clean.tar.gz",
    "dev-other.tar.gz",
    "test-clean.tar.gz",
    "test-other.tar.gz",
)
DEFAULT_BASE_URL = "https://www.openslr.org/resources/12/"
# md5 sums openslr publishes for resource 12 (https://www.openslr.org/resources/12/md5sum.txt).
OPENSLR_MD5 = {
    "dev-clean.tar.gz": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other.tar.gz": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean.tar.gz": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other.tar.gz": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100.tar.gz": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360.tar.gz": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500.tar.gz": "d1a0fd59409feb2c614ce4d30c387708",
}
DEFAULT_TARGET_DIR = Path("LibriSpeech_dataset")  # deepspeech.pytorch's --target-dir, the lab's folder
# The lab manual's (deepspeech.pytorch's) folder for each tarball: LibriSpeech_dataset/<folder>/<name>.tar.gz
LAB_FOLDERS = (("train-", "train"), ("dev-", "val"), ("test-clean", "test_clean"), ("test-other", "test_other"))
SKIP_WHEN_SEARCHING = ("wav", "txt")  # our own output folders: thousands of files, never a tarball
TRAIN_MANIFEST = "libri_train_manifest.json"
# Manifests over fixed splits; each is written only when all its splits were given.
FIXED_MANIFESTS = {
    "libri_val_manifest.json": ("dev-clean", "dev-other"),
    "libri_test_clean_manifest.json": ("test-clean",),
    "libri_test_other_manifest.json": ("test-other",),
}
TARBALL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.tar\.gz")
UTT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
TMP_SUFFIX = ".tmp"
DONE_MARKER = ".done"


class PrepError(ToolError):
    """A preparation step failed; the message names the tarball, member or URL."""


@dataclass(frozen=True)
class PrepOptions:
    """Everything `prepare` needs; `main` builds it from the command line."""

    target_dir: Path
    tar_dir: Path
    files: tuple[str, ...] = DEFAULT_FILES
    manifest_dir: Path | None = None  # None: the target dir
    lab_layout: bool = False  # downloads go to tar_dir/<lab folder>/ (train, val, test_clean, test_other)
    download: bool = False
    base_url: str = DEFAULT_BASE_URL
    check_md5: bool = True
    retries: int = 3
    timeout: float = 60.0
    min_duration: float = 1.0
    max_duration: float = 15.0
    num_workers: int = 1
    progress: bool = False


@dataclass
class SplitReport:
    """What happened to one split: utterances converted now, found already done, and skipped (with reasons)."""

    split: str
    converted: int = 0
    reused: int = 0
    audio_seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


@dataclass
class PrepResult:
    """Per-split reports and the manifests written (file -> sample count)."""

    splits: list[SplitReport]
    manifests: dict[Path, int]

    @property
    def skipped(self) -> list[str]:
        """Every skipped file, over all splits."""
        return [msg for report in self.splits for msg in report.skipped]


@dataclass(frozen=True)
class TarIndex:
    """What a tarball holds: flac members by utterance id, and cleaned transcripts by utterance id."""

    flacs: dict[str, str]
    transcripts: dict[str, str]


@dataclass(frozen=True)
class ConvertJob:
    """One flac to convert: its bytes, where its wav and txt go, and its transcript."""

    utt: str
    member: str
    data: bytes
    wav_path: Path
    txt_path: Path
    text: str


@dataclass(frozen=True)
class ConvertResult:
    """The outcome of one flac -> wav conversion: the number of samples written, or why it failed."""

    utt: str
    member: str
    frames: int
    error: str | None


# ---------------------------------------------------------------------------------------------- small file helpers


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    """Write `data` to a hidden temp name next to `path`, then rename: readers never see a half-written file.

    Args:
        durable: fsync before the rename (manifests and markers; per-utterance files only need to survive SIGKILL).
    """
    write_bytes(path, data, durable=durable)


def remove_stale_temps(directory: Path) -> int:
    """Delete temp files a killed run left in `directory`; returns how many."""
    stale = list(directory.glob(f".*{TMP_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def lab_folder(name: str) -> str:
    """The lab manual's folder for a tarball (`train-clean-100.tar.gz` -> `train`); other names go to `other`."""
    return next((folder for prefix, folder in LAB_FOLDERS if name.startswith(prefix)), "other")


def find_tarball(tar_dir: Path, name: str) -> Path | None:
    """`tar_dir/name`, else the single copy of `name` in tar_dir's subfolders (the lab manual's layout), else None.

    Raises:
        PrepError: the name appears in more than one subfolder (which one is meant is not clear).
    """
    direct = tar_dir / name
    if direct.is_file():
        return direct
    found = []
    for root, dirs, files in os.walk(tar_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_WHEN_SEARCHING and not d.startswith("."))
        if name in files:
            found.append(Path(root) / name)
    if len(found) > 1:
        raise PrepError(f"{name} found {len(found)} times under {tar_dir}: {', '.join(map(str, found))}; keep one")
    return found[0] if found else None


def locate_tarballs(opts: PrepOptions) -> dict[str, Path]:
    """Split name -> tarball path; tarballs found under --tar-dir are used as they are, others downloaded if asked."""
    tarballs = {}
    for name in opts.files:
        path = find_tarball(opts.tar_dir, name)
        if path is None:
            example = opts.tar_dir / lab_folder(name) / name
            if not opts.download:
                raise FileNotFoundError(
                    f"tarball {name} not found in {opts.tar_dir} or its subfolders (put it there, e.g. {example} "
                    f"as in the lab manual, or pass --download to fetch it from {opts.base_url})"
                )
            path = example if opts.lab_layout else opts.tar_dir / name
            url = opts.base_url.rstrip("/") + "/" + name
            md5 = OPENSLR_MD5.get(name) if opts.check_md5 else None
            download_file(url, path, md5, opts.retries, opts.timeout, opts.progress)
        tarballs[name[: -len(".tar.gz")]] = path
    return tarballs


# -------------------------------------------------------------------------------------------------- archive safety


def _utt_id(tar_path: Path, where: str, utt: str) -> str:
    """Validate an utterance id: it becomes a file name, so it may hold only letters, digits, '-' and '_'."""
    if not UTT_ID.fullmatch(utt):
        raise UnsafeArchiveError(f"unsafe tarball {tar_path}: {where}: bad utterance id {utt!r}")
    return utt


@contextmanager
def _reading(tar_path: Path) -> Iterator[None]:
    """Turn low-level read errors of a tarball into one PrepError that names it."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise PrepError(f"cannot read tarball {tar_path}: {err} (truncated or corrupt? fetch it again)") from err


def scan_tarball(tar_path: Path) -> TarIndex:
    """Check every member and collect the flac members and transcripts; nothing is written.

    Raises:
        UnsafeArchiveError: a member is unsafe, an utterance id is malformed or appears twice.
        PrepError: the tarball cannot be read or a transcript line is malformed.
    """
    index = TarIndex({}, {})
    with _reading(tar_path), tarfile.open(tar_path, "r|*") as tf:
        for member in tf:
            check_tar_member(tar_path, member)
            path = PurePosixPath(member.name)
            if not member.isfile():
                continue
            if path.suffix == ".flac":
                utt = _utt_id(tar_path, f"member {member.name!r}", path.stem)
                if utt in index.flacs:
                    raise PrepError(f"tarball {tar_path}: utterance {utt} appears twice ({member.name})")
                index.flacs[utt] = member.name
            elif path.name.endswith(".trans.txt"):
                _parse_transcripts(tar_path, member.name, tf.extractfile(member).read(), index.transcripts)
    return index


def _parse_transcripts(tar_path: Path, member: str, data: bytes, out: dict[str, str]) -> None:
    """Add the `UTT_ID TRANSCRIPT` lines of one .trans.txt member to `out`, cleaned (upper case, single spaces)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PrepError(f"tarball {tar_path}: {member} is not UTF-8 text: {err}") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{member}:{line_no}"
        utt, _, words = line.strip().partition(" ")
        transcript = clean_transcript(words)
        if not transcript:
            raise PrepError(f"tarball {tar_path}: {where}: expected 'UTTERANCE_ID TRANSCRIPT', got {line!r}")
        out[_utt_id(tar_path, where, utt)] = transcript


def iter_flac_data(tar_path: Path, wanted: dict[str, str]) -> Iterator[tuple[str, str, bytes]]:
    """Yield (utterance id, member name, bytes) for the wanted members (member name -> utterance id)."""
    with _reading(tar_path), tarfile.open(tar_path, "r|*") as tf:
        for member in tf:
            utt = wanted.get(member.name)
            if utt is not None and member.isfile():
                yield utt, member.name, tf.extractfile(member).read()


# ------------------------------------------------------------------------------------------------------ conversion


def decode_pcm16(data: bytes) -> np.ndarray:
    """Decode audio bytes (flac, wav, ...) to 16 kHz mono int16, shape (samples,).

    LibriSpeech is already 16 kHz mono 16-bit, so its samples pass through untouched; anything else is
    averaged to mono and resampled.
    Raises:
        AudioError: no samples, or fewer samples than the header announces (a truncated file).
        RuntimeError / ValueError: libsndfile cannot parse the data.
    """
    with sf.SoundFile(io.BytesIO(data)) as f:
        expected, sr = f.frames, f.samplerate
        pcm = f.read(dtype="int16", always_2d=True)
    if pcm.shape[0] == 0:
        raise AudioError("no samples")
    if pcm.shape[0] < expected:
        raise AudioError(f"truncated: {pcm.shape[0]} of {expected} samples")
    if pcm.shape[1] == 1 and sr == SAMPLE_RATE:
        return pcm[:, 0]
    audio = resample(to_mono(pcm.astype(np.float32) / 32768.0), sr, SAMPLE_RATE)
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def convert_utterance(job: ConvertJob) -> ConvertResult:
    """Decode one flac, then write its txt and its 16 kHz mono PCM_16 wav, each atomically, the wav last.

    The wav is written last, so an existing wav means the utterance is finished. Unreadable audio is returned as an
    error (the caller reports and skips it, and no file is written); failures to write are raised.
    """
    try:
        pcm = decode_pcm16(job.data)
    except (AudioError, RuntimeError, ValueError) as err:
        # libsndfile's message names the in-memory buffer by address; its error_string alone is reproducible.
        detail = getattr(err, "error_string", None) or str(err)
        return ConvertResult(job.utt, job.member, 0, f"unreadable audio: {detail}")
    buf = io.BytesIO()
    sf.write(buf, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    atomic_write_bytes(job.txt_path, job.text.encode("utf-8"))
    atomic_write_bytes(job.wav_path, buf.getvalue())
    return ConvertResult(job.utt, job.member, int(pcm.shape[0]), None)


def convert_batch(jobs: list[ConvertJob]) -> list[ConvertResult]:
    """`convert_utterance` over a batch; one pool task per batch keeps the per-task overhead small."""
    return [convert_utterance(job) for job in jobs]


def batched(jobs: Iterable[ConvertJob], max_items: int = 16, max_bytes: int = 8 << 20) -> Iterator[list[ConvertJob]]:
    """Group jobs into batches of at most `max_items` jobs or about `max_bytes` of audio."""
    batch: list[ConvertJob] = []
    size = 0
    for job in jobs:
        batch.append(job)
        size += len(job.data)
        if len(batch) >= max_items or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def run_conversions(jobs: Iterable[ConvertJob], num_workers: int) -> Iterator[ConvertResult]:
    """Run `convert_utterance` over the jobs, inline or in a process pool; results come in completion order.

    The pool gets batches, at most 2 per worker in flight, so memory stays bounded however large the tarball is;
    the output does not depend on the order in which workers finish.
    """
    if num_workers <= 1:
        yield from map(convert_utterance, jobs)
        return
    with ProcessPoolExecutor(num_workers) as pool:
        pending: set[Future] = set()
        for batch in batched(jobs):
            if len(pending) >= 2 * num_workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (res for f in done for res in f.result())
            pending.add(pool.submit(convert_batch, batch))
        yield from (res for f in as_completed(pending) for res in f.result())


def process_split(split: str, tar_path: Path, split_dir: Path, num_workers: int, progress: bool) -> SplitReport:
    """Convert one split's tarball into `split_dir/wav` and `split_dir/txt`, then write its `.done` marker.

    Utterances finished by an earlier (possibly killed) run are kept; the rest are converted.
    """
    index = scan_tarball(tar_path)  # refuses unsafe archives before anything is written
    wav_dir, txt_dir = split_dir / "wav", split_dir / "txt"
    for directory in (wav_dir, txt_dir):
        directory.mkdir(parents=True, exist_ok=True)
        if remove_stale_temps(directory):
            logger.info("%s: removed temporary files of an interrupted run", directory)
    report = SplitReport(split)
    wanted = {}
    for utt, member in index.flacs.items():
        if utt not in index.transcripts:
            report.skipped.append(f"{tar_path}:{member}: no transcript for utterance {utt}")
        elif (wav_dir / f"{utt}.wav").exists():
            report.reused += 1
        else:
            wanted[member] = utt
    jobs = (
        ConvertJob(u, m, data, wav_dir / f"{u}.wav", txt_dir / f"{u}.txt", index.transcripts[u])
        for u, m, data in iter_flac_data(tar_path, wanted)
    )
    with tqdm(total=len(wanted), desc=f"convert {split}", unit="utt", disable=not progress) as bar:
        for res in run_conversions(jobs, num_workers):
            bar.update(1)
            if res.error is not None:
                report.skipped.append(f"{tar_path}:{res.member}: {res.error}")
                logger.warning("skipped %s", report.skipped[-1])
            else:
                report.converted += 1
                report.audio_seconds += res.frames / SAMPLE_RATE
    report.skipped.sort()
    marker = {
        "split": split,
        "utterances": report.converted + report.reused,
        "skipped": report.skipped,
        "tarball": tarball_identity(tar_path),
    }
    atomic_write_bytes(split_dir / DONE_MARKER, json.dumps(marker, indent=2).encode("utf-8"), durable=True)
    return report


def tarball_identity(tar_path: Path) -> dict:
    """What the `.done` marker remembers of the tarball it was made from: name, size and modification time."""
    st = tar_path.stat()
    return {"name": tar_path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def report_from_marker(split: str, split_dir: Path, tar_path: Path | None = None) -> SplitReport:
    """The report of a split finished by an earlier run, read back from its `.done` marker.

    Raises:
        PrepError: the marker is malformed, or the tarball was replaced since (size or time differ): the split's
            files come from the old tarball, so the message says which folder to delete to convert it again.
    """
    marker_path = split_dir / DONE_MARKER
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        report = SplitReport(split, reused=int(marker["utterances"]), skipped=list(marker["skipped"]))
        made_from = marker.get("tarball")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise PrepError(f"{marker_path}: malformed marker ({err}); delete it to convert {split} again") from err
    if tar_path is not None and isinstance(made_from, dict) and made_from != tarball_identity(tar_path):
        raise PrepError(
            f"{tar_path} changed since {split} was prepared from it ({marker_path} records size "
            f"{made_from.get('size')}, the file now has {tar_path.stat().st_size}, or its time differs); "
            f"delete {split_dir} and run again to convert the new tarball"
        )
    return report


# ------------------------------------------------------------------------------------------------------- manifests


def manifest_groups(splits: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Manifest file name -> its splits, for the manifests whose splits were all given."""
    splits = set(splits)
    groups = {}
    train = tuple(sorted(s for s in splits if s.startswith("train-")))
    if train:
        groups[TRAIN_MANIFEST] = train
    for name, needed in FIXED_MANIFESTS.items():
        if splits.issuperset(needed):
            groups[name] = needed
    return groups


def split_entries(target: Path, split: str, min_duration: float, max_duration: float) -> list[tuple[float, str, str]]:
    """(duration, wav path, txt path) for each utterance of a split, paths relative to `target`.

    The duration filter applies to training splits (train-*) only; dev and test sets are kept whole.
    """
    entries = []
    dropped = 0
    train = split.startswith("train-")
    for wav in sorted((target / split / "wav").glob("*.wav")):
        txt = target / split / "txt" / f"{wav.stem}.txt"
        if not txt.is_file():
            raise PrepError(f"{wav}: no transcript {txt}; delete {target / split / DONE_MARKER} and run again")
        duration = audio_duration(wav)
        if train and not min_duration <= duration <= max_duration:
            dropped += 1
            continue
        entries.append((duration, f"{split}/wav/{wav.name}", f"{split}/txt/{txt.name}"))
    if dropped:
        logger.info("%s: %d utterances outside %.1f-%.1f s left out", split, dropped, min_duration, max_duration)
    return entries


def write_manifest(path: Path, root: Path, entries: list[tuple[float, str, str]]) -> None:
    """Write a deepspeech.pytorch JSON manifest atomically, samples sorted by duration, ties by path."""
    samples = [{"wav_path": wav, "transcript_path": txt} for _, wav, txt in sorted(entries)]
    doc = {"root_path": str(root), "samples": samples}
    # One line, as deepspeech.pytorch writes it: the lab's json_to_csv.py parses the file line by line.
    atomic_write_bytes(path, (json.dumps(doc) + "\n").encode("utf-8"), durable=True)


def write_manifests(opts: PrepOptions, splits: Iterable[str]) -> dict[Path, int]:
    """Write every manifest whose splits were all given; returns manifest path -> sample count."""
    root = opts.target_dir.resolve()
    out_dir = (opts.manifest_dir or opts.target_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = manifest_groups(splits)
    for name, needed in FIXED_MANIFESTS.items():
        if name not in groups:
            logger.info("%s not written: it needs %s", name, " + ".join(n + ".tar.gz" for n in needed))
    written = {}
    for name, group in groups.items():
        entries = []
        for split in group:
            entries.extend(split_entries(root, split, opts.min_duration, opts.max_duration))
        write_manifest(out_dir / name, root, entries)
        written[out_dir / name] = len(entries)
    return written


def prepare(opts: PrepOptions) -> PrepResult:
    """Locate (or download) the tarballs, convert every split not yet done, and write the manifests."""
    tarballs = locate_tarballs(opts)
    opts.target_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for split, tar_path in tarballs.items():
        split_dir = opts.target_dir / split
        if (split_dir / DONE_MARKER).is_file():
            logger.info("%s: already prepared (%s exists)", split, split_dir / DONE_MARKER)
            reports.append(report_from_marker(split, split_dir, tar_path))
        else:
            reports.append(process_split(split, tar_path, split_dir, opts.num_workers, opts.progress))
    return PrepResult(reports, write_manifests(opts, tarballs))


# ------------------------------------------------------------------------------------------------------------- CLI


def _tarball_list(value: str) -> tuple[str, ...]:
    """Parse --files-to-use: distinct NAME.tar.gz file names, no folders."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    bad = [n for n in names if not TARBALL_NAME.fullmatch(n)]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected a comma list of NAME.tar.gz file names, got {value!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a tarball is listed twice in {value!r}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see the module docstring for what each output is."""
    p = argparse.ArgumentParser(description="Prepare LibriSpeech wav/txt files and JSON manifests.")
    p.add_argument(
        "--target-dir", type=Path, default=DEFAULT_TARGET_DIR, help="where split folders and manifests go "
        "(default: LibriSpeech_dataset, as deepspeech.pytorch and the lab)"
    )  # fmt: skip
    p.add_argument(
        "--tar-dir", type=Path, help="folder searched, with its subfolders, for the tarballs (default: TARGET_DIR, "
        "so LibriSpeech_dataset/{train,val,test_clean,test_other}/*.tar.gz of the lab manual is found)"
    )  # fmt: skip
    p.add_argument("--manifest-dir", type=Path, help="where the JSON manifests go (default: TARGET_DIR)")
    p.add_argument("--files-to-use", type=_tarball_list, default=DEFAULT_FILES, help="comma list of tarballs")
    p.add_argument("--download", action="store_true", help="fetch tarballs missing from --tar-dir")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="where --download fetches from")
    p.add_argument("--no-md5-check", action="store_true", help="skip the openslr md5 check (mirrors of other data)")
    p.add_argument("--retries", type=int, default=3, help="resume attempts per download")
    p.add_argument("--min-duration", type=float, default=1.0, help="seconds; training splits only")
    p.add_argument("--max-duration", type=float, default=15.0, help="seconds; training splits only")
    p.add_argument("--num-workers", type=int, default=os.cpu_count() or 1, help="conversion processes")
    p.add_argument("--strict", action="store_true", help="exit non-zero when any audio file was skipped")
    args = p.parse_args(argv)
    if args.num_workers < 1 or args.retries < 0:
        p.error("--num-workers must be >= 1 and --retries >= 0")
    if not 0 <= args.min_duration <= args.max_duration:
        p.error(f"need 0 <= --min-duration <= --max-duration, got {args.min_duration} and {args.max_duration}")
    return args


def print_summary(result: PrepResult) -> None:
    """One line per split and per manifest, then the skipped files and their count."""
    for r in result.splits:
        total = r.converted + r.reused
        print(f"{r.split}: {total} utterances ({r.converted} converted now, {r.reused} already done)")
    for path, count in result.manifests.items():
        print(f"wrote {path} ({count} samples)")
    for msg in result.skipped:
        print(f"skipped: {msg}")
    print(f"skipped {len(result.skipped)} unreadable or unmatched audio files")


def main(argv: list[str] | None = None) -> int:
    """Prepare LibriSpeech; returns 1 on an error, or with --strict when files were skipped."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    opts = PrepOptions(
        target_dir=args.target_dir,
        tar_dir=args.tar_dir or args.target_dir,
        files=args.files_to_use,
        manifest_dir=args.manifest_dir,
        lab_layout=args.tar_dir is None,
        download=args.download,
        base_url=args.base_url,
        check_md5=not args.no_md5_check,
        retries=args.retries,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        num_workers=args.num_workers,
        progress=sys.stderr.isatty(),
    )
    try:
        result = prepare(opts)
    except (ToolError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_summary(result)
    if args.strict and result.skipped:
        print(f"error: {len(result.skipped)} files skipped and --strict was given", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
