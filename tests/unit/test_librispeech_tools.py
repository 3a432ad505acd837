"""tools/librispeech.py on tiny generated LibriSpeech-format tarballs: offline and downloaded runs, resumed downloads,
SIGKILL and re-run, unsafe archives, corrupt audio, duration filters. Nothing leaves 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools import common, librispeech
from tools.make_sample_corpus import CorpusItem, write_librispeech_tarball

REPO = Path(__file__).resolve().parents[2]
ALL_FILES = "train-clean-100.tar.gz,dev-clean.tar.gz,dev-other.tar.gz,test-clean.tar.gz,test-other.tar.gz"
# Durations in seconds per split: train has one utterance below 1 s and one above 15 s; so do the dev sets.
DURATIONS = {
    "train-clean-100": (0.5, 1.25, 2.0, 3.0, 16.0),
    "dev-clean": (0.5, 2.0),
    "dev-other": (1.5, 16.0),
    "test-clean": (1.0, 1.0, 2.5),
    "test-other": (0.75,),
}
WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")


def tone_flac(seconds: float, sr: int = 16000, channels: int = 1) -> bytes:
    """A 440 Hz tone as 16-bit flac bytes."""
    x = 0.3 * np.sin(2 * np.pi * 440.0 * np.arange(round(seconds * sr)) / sr)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def make_split(tar_dir: Path, split: str, durations: tuple[float, ...], sr: int = 16000, channels: int = 1) -> Path:
    """Write `{tar_dir}/{split}.tar.gz` with one tone per duration; transcripts are lower case with extra spaces."""
    speaker = 100 + sum(map(ord, split)) % 800
    items = [
        CorpusItem(
            f"{speaker}-{speaker * 10}-{i:04d}", f"it's  number {WORDS[i % 10].lower()}", tone_flac(d, sr, channels)
        )
        for i, d in enumerate(durations)
    ]
    tar_dir.mkdir(parents=True, exist_ok=True)
    write_librispeech_tarball(tar_dir / f"{split}.tar.gz", split, items)
    return tar_dir / f"{split}.tar.gz"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five tiny split tarballs; tests only read them."""
    tar_dir = tmp_path_factory.mktemp("tarballs")
    for split, durations in DURATIONS.items():
        make_split(tar_dir, split, durations)
    return tar_dir


def run_tool(*args: str | Path) -> int:
    return librispeech.main([str(a) for a in args])


def manifests(target: Path) -> dict[str, str]:
    """Manifest name -> text with the target root replaced, so runs into different targets compare equal."""
    root = str(target.resolve())
    return {p.name: p.read_text(encoding="utf-8").replace(root, "ROOT") for p in sorted(target.glob("*.json"))}


def leftovers(directory: Path) -> list[Path]:
    """Temp and partial files anywhere under `directory`."""
    return [p for p in directory.rglob("*") if p.name.endswith((".tmp", ".part"))]


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted offline run over the corpus, with default options."""
    target = tmp_path_factory.mktemp("reference")
    assert run_tool("--target-dir", target, "--tar-dir", corpus, "--num-workers", "1") == 0
    return target


# ------------------------------------------------------------------------------------------------ offline runs


def test_offline_run_writes_wav_txt_and_sorted_manifests(reference: Path) -> None:
    expected_counts = {
        "libri_train_manifest.json": 3,
        "libri_val_manifest.json": 4,
        "libri_test_clean_manifest.json": 3,
        "libri_test_other_manifest.json": 1,
    }
    for name, count in expected_counts.items():
        doc = json.loads((reference / name).read_text(encoding="utf-8"))
        assert doc["root_path"] == str(reference.resolve())
        assert len(doc["samples"]) == count
        keys = [(sf.info(str(reference / s["wav_path"])).duration, s["wav_path"]) for s in doc["samples"]]
        assert keys == sorted(keys)
    test_clean = json.loads((reference / "libri_test_clean_manifest.json").read_text(encoding="utf-8"))
    first = test_clean["samples"][0]
    assert first["wav_path"].startswith("test-clean/wav/") and first["wav_path"].endswith("-0000.wav")
    assert (reference / first["transcript_path"]).read_text(encoding="utf-8") == "IT'S NUMBER ZERO"
    info = sf.info(str(reference / first["wav_path"]))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 16000)
    for split, durations in DURATIONS.items():
        assert json.loads((reference / split / ".done").read_text())["utterances"] == len(durations)
    assert leftovers(reference) == []


def test_duration_filter_applies_to_training_splits_only(reference: Path, corpus: Path, tmp_path: Path) -> None:
    def durations(target: Path, name: str) -> list[float]:
        doc = json.loads((target / name).read_text(encoding="utf-8"))
        return [sf.info(str(target / s["wav_path"])).duration for s in doc["samples"]]

    assert durations(reference, "libri_train_manifest.json") == [1.25, 2.0, 3.0]
    assert durations(reference, "libri_val_manifest.json") == [0.5, 1.5, 2.0, 16.0]
    assert durations(reference, "libri_test_other_manifest.json") == [0.75]
    target = tmp_path / "wide"
    assert run_tool("--target-dir", target, "--tar-dir", corpus, "--min-duration", "0", "--max-duration", "20") == 0
    assert durations(target, "libri_train_manifest.json") == [0.5, 1.25, 2.0, 3.0, 16.0]
    assert durations(target, "libri_val_manifest.json") == [0.5, 1.5, 2.0, 16.0]


def test_manifest_written_only_when_all_its_splits_are_given(corpus: Path, tmp_path: Path) -> None:
    assert run_tool("--target-dir", tmp_path, "--tar-dir", corpus, "--files-to-use", "dev-clean.tar.gz") == 0
    assert list(tmp_path.glob("*.json")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-clean"]


def test_parallel_run_matches_serial_run(reference: Path, corpus: Path, tmp_path: Path) -> None:
    assert run_tool("--target-dir", tmp_path, "--tar-dir", corpus, "--num-workers", "2") == 0
    assert manifests(tmp_path) == manifests(reference)
    for wav in sorted(reference.glob("*/wav/*.wav")):
        assert (tmp_path / wav.relative_to(reference)).read_bytes() == wav.read_bytes()


def test_rerun_converts_nothing_and_keeps_files(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ("--target-dir", tmp_path, "--tar-dir", corpus, "--files-to-use", "test-clean.tar.gz", "--num-workers", "1")
    assert run_tool(*args) == 0
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")}
    capsys.readouterr()
    assert run_tool(*args) == 0
    assert "test-clean: 3 utterances (0 converted now, 3 already done)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")} == stamps
    # As a killed run leaves it: no marker, one wav missing, temp files of both kinds lying around.
    wav_dir = tmp_path / "test-clean" / "wav"
    (tmp_path / "test-clean" / ".done").unlink()
    missing = sorted(wav_dir.iterdir())[1]
    missing.unlink()
    (wav_dir / f".{missing.name}.999.tmp").write_bytes(b"RIFF half")
    (tmp_path / "test-clean" / "txt" / ".x.txt.999.tmp").write_bytes(b"HALF")
    assert run_tool(*args) == 0
    assert "test-clean: 3 utterances (1 converted now, 2 already done)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav") if p != missing} == {
        p: t for p, t in stamps.items() if p != missing
    }
    assert missing.is_file() and leftovers(tmp_path) == []


def test_resamples_and_downmixes_other_formats(tmp_path: Path) -> None:
    make_split(tmp_path / "tars", "test-other", (1.0,), sr=44100, channels=2)
    assert (
        run_tool(
            "--target-dir", tmp_path / "out", "--tar-dir", tmp_path / "tars", "--files-to-use", "test-other.tar.gz"
        )
        == 0
    )
    (wav,) = (tmp_path / "out" / "test-other" / "wav").glob("*.wav")
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")


def test_missing_tarball_without_download_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_tool("--target-dir", tmp_path / "out", "--tar-dir", tmp_path, "--files-to-use", "dev-clean.tar.gz") == 1
    err = capsys.readouterr().err
    assert f"tarball dev-clean.tar.gz not found in {tmp_path} or its subfolders" in err and "--download" in err
    assert str(tmp_path / "val" / "dev-clean.tar.gz") in err  # where the lab manual would have it
    assert err.count("\n") == 1


def test_truncated_tarball_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "dev-clean.tar.gz").read_bytes()
    (tmp_path / "dev-clean.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(librispeech.PrepError, match=r"cannot read tarball .*dev-clean\.tar\.gz"):
        librispeech.scan_tarball(tmp_path / "dev-clean.tar.gz")


# --------------------------------------------------------------------------------------------------- downloads


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves `server.files`, honours `Range: bytes=N-`, and drops the connection early when told to."""

    timeout = 10  # a stuck client cannot hold a server thread for ever

    def do_GET(self) -> None:
        name, byte_range = self.path.lstrip("/"), self.headers.get("Range")
        self.server.requests.append((name, byte_range))
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", byte_range)[1]) if byte_range else 0
        body = data[start:]
        self.send_response(206 if byte_range else 200)
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.drop_after.pop(name, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = cut is not None

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class RangeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@contextmanager
def serve(directory: Path) -> Iterator[RangeServer]:
    """Serve the tarballs of `directory` on 127.0.0.1 for the duration of the block."""
    server = RangeServer({p.name: p.read_bytes() for p in directory.glob("*.tar.gz")})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def download_args(target: Path, tar_dir: Path, server: RangeServer, *extra: str) -> list[str | Path]:
    return ["--target-dir", target, "--tar-dir", tar_dir, "--download", "--base-url", server.base_url, *extra]


def test_download_gives_the_same_manifests_as_offline(reference: Path, corpus: Path, tmp_path: Path) -> None:
    with serve(corpus) as server:
        assert run_tool(*download_args(tmp_path / "out", tmp_path / "tars", server, "--no-md5-check")) == 0
    assert manifests(tmp_path / "out") == manifests(reference)
    assert sorted(server.requests) == sorted((name, None) for name in ALL_FILES.split(","))
    for name in ALL_FILES.split(","):
        assert (tmp_path / "tars" / name).read_bytes() == (corpus / name).read_bytes()
    assert leftovers(tmp_path) == []


def test_dropped_download_resumes_with_a_range_request(reference: Path, corpus: Path, tmp_path: Path) -> None:
    with serve(corpus) as server:
        server.drop_after["dev-other.tar.gz"] = 1000
        assert run_tool(*download_args(tmp_path / "out", tmp_path / "tars", server, "--no-md5-check")) == 0
    dev_other = [r for name, r in server.requests if name == "dev-other.tar.gz"]
    assert dev_other == [None, "bytes=1000-"]
    assert (tmp_path / "tars" / "dev-other.tar.gz").read_bytes() == (corpus / "dev-other.tar.gz").read_bytes()
    assert manifests(tmp_path / "out") == manifests(reference)
    assert leftovers(tmp_path) == []


def test_partial_file_is_resumed(reference: Path, corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "test-clean.tar.gz").read_bytes()
    (tmp_path / "tars").mkdir()
    (tmp_path / "tars" / "test-clean.tar.gz.part").write_bytes(data[:1500])
    with serve(corpus) as server:
        assert run_tool(*download_args(tmp_path / "out", tmp_path / "tars", server, "--no-md5-check")) == 0
    assert ("test-clean.tar.gz", "bytes=1500-") in server.requests
    assert ("test-clean.tar.gz", None) not in server.requests
    assert (tmp_path / "tars" / "test-clean.tar.gz").read_bytes() == data
    assert manifests(tmp_path / "out") == manifests(reference)


def test_tarballs_already_there_are_not_downloaded(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "tars").mkdir()
    (tmp_path / "tars" / "dev-clean.tar.gz").write_bytes((corpus / "dev-clean.tar.gz").read_bytes())
    with serve(corpus) as server:
        args = download_args(tmp_path / "out", tmp_path / "tars", server, "--files-to-use", "dev-clean.tar.gz")
        assert run_tool(*args) == 0
    assert server.requests == []


def test_md5_mismatch_is_refused_and_the_file_removed(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Our generated dev-clean.tar.gz cannot match openslr's md5 for the real one.
    with serve(corpus) as server:
        args = download_args(tmp_path / "out", tmp_path / "tars", server, "--files-to-use", "dev-clean.tar.gz")
        assert run_tool(*args) == 1
    err = capsys.readouterr().err
    assert (
        f"md5 mismatch for {server.base_url}dev-clean.tar.gz: expected {librispeech.OPENSLR_MD5['dev-clean.tar.gz']}"
        in err
    )
    assert list((tmp_path / "tars").iterdir()) == []
    assert not (tmp_path / "out" / "dev-clean").exists()


def test_download_errors_name_the_url(corpus: Path, tmp_path: Path) -> None:
    with serve(corpus) as server:
        with pytest.raises(
            common.DownloadError, match=r"cannot download http://127\.0\.0\.1:\d+/nope\.tar\.gz: HTTP 404"
        ):
            common.download_file(server.base_url + "nope.tar.gz", tmp_path / "nope.tar.gz")
        server.drop_after["dev-clean.tar.gz"] = 10
        with pytest.raises(common.DownloadError, match=r"failed after 1 attempts: .*connection ended after 10 of"):
            common.download_file(server.base_url + "dev-clean.tar.gz", tmp_path / "dev-clean.tar.gz", retries=0)
    assert (tmp_path / "dev-clean.tar.gz.part").stat().st_size == 10  # kept for the next run to resume
    assert not (tmp_path / "dev-clean.tar.gz").exists()


# ------------------------------------------------------------------------------------------------ interruption


def test_sigkill_during_conversion_then_rerun_matches_uninterrupted_run(tmp_path: Path) -> None:
    # 44.1 kHz stereo input needs resampling, which keeps the conversion busy long enough to be killed mid-way.
    n = 120
    make_split(tmp_path / "tars", "train-clean-100", (4.0,) * n, sr=44100, channels=2)
    common = ["--tar-dir", str(tmp_path / "tars"), "--files-to-use", "train-clean-100.tar.gz"]
    assert run_tool("--target-dir", tmp_path / "ref", *common, "--num-workers", "2") == 0
    cmd = [sys.executable, str(REPO / "tools" / "librispeech.py"), "--target-dir", str(tmp_path / "out"), *common]
    proc = subprocess.Popen(cmd + ["--num-workers", "1"], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wav_dir = tmp_path / "out" / "train-clean-100" / "wav"
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline and len(list(wav_dir.glob("*.wav"))) < 3:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= len(list(wav_dir.glob("*.wav"))) < n
    assert not (tmp_path / "out" / "train-clean-100" / ".done").exists()

    assert run_tool("--target-dir", tmp_path / "out", *common, "--num-workers", "2") == 0
    assert manifests(tmp_path / "out") == manifests(tmp_path / "ref")
    assert sorted(p.name for p in wav_dir.iterdir()) == sorted(p.name for p in (tmp_path / "ref").glob("*/wav/*"))
    for wav in (tmp_path / "ref" / "train-clean-100" / "wav").iterdir():
        assert (wav_dir / wav.name).read_bytes() == wav.read_bytes()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------- unsafe archives


def _unsafe_tarball(path: Path, kind: str) -> str:
    """A dev-clean tarball with a valid utterance first, then one bad member; returns the bad member's name."""
    bad = {
        "dotdot": "LibriSpeech/dev-clean/../../../escape.txt",
        "absolute": str(path.parent.parent / "escape.txt"),
        "symlink": "LibriSpeech/dev-clean/1/2/link.flac",
        "hardlink": "LibriSpeech/dev-clean/1/2/hard.flac",
        "device": "LibriSpeech/dev-clean/1/2/dev.flac",
        "bad-utt-id": "LibriSpeech/dev-clean/1/2/1-2.trans.txt",
    }[kind]
    with tarfile.open(path, "w:gz") as tf:
        for name, data in (
            ("LibriSpeech/dev-clean/1/2/1-2-0000.flac", tone_flac(1.0)),
            ("LibriSpeech/dev-clean/1/2/1-2.trans.txt", b"1-2-0000 HELLO\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(bad)
        data = b"../../escape HELLO\n" if kind == "bad-utt-id" else b"escaped"
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "LibriSpeech/dev-clean/1/2/1-2-0000.flac"
        elif kind == "device":
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        else:
            info.size = len(data)
        tf.addfile(info, io.BytesIO(data) if info.size else None)
    return bad


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dotdot", "has a '..' path component"),
        ("absolute", "has an absolute path"),
        ("symlink", "is a link to '/etc/passwd'"),
        ("hardlink", "is a link to"),
        ("device", "is a device, fifo or other special file"),
        ("bad-utt-id", r"1-2\.trans\.txt:1: bad utterance id '\.\./\.\./escape'"),
    ],
)
def test_unsafe_archive_is_refused_before_anything_is_written(
    kind: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tars, target = tmp_path / "tars", tmp_path / "target"
    tars.mkdir()
    bad = _unsafe_tarball(tars / "dev-clean.tar.gz", kind)
    with pytest.raises(librispeech.UnsafeArchiveError, match=f"unsafe tarball {re.escape(str(tars))}.*{reason}"):
        librispeech.scan_tarball(tars / "dev-clean.tar.gz")
    assert run_tool("--target-dir", target, "--tar-dir", tars, "--files-to-use", "dev-clean.tar.gz") == 1
    err = capsys.readouterr().err
    assert "unsafe tarball" in err and str(tars / "dev-clean.tar.gz") in err
    if kind != "bad-utt-id":
        assert repr(bad) in err
    assert list(target.rglob("*")) == []  # not even the valid utterance before the bad member
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "target",
        "tars",
        "tars/dev-clean.tar.gz",
    ]


# ------------------------------------------------------------------------------------------------- corrupt audio


@pytest.fixture()
def corrupt_corpus(tmp_path: Path) -> Path:
    """dev-clean with 3 good utterances, one garbage flac and one truncated flac."""
    good = tone_flac(2.0)
    flacs = [good, b"this is not a flac file", good, tone_flac(3.0)[:3000], good]
    items = [CorpusItem(f"7-8-{i:04d}", "HELLO", flac) for i, flac in enumerate(flacs)]
    write_librispeech_tarball(tmp_path / "dev-clean.tar.gz", "dev-clean", items)
    return tmp_path / "dev-clean.tar.gz"


def test_corrupt_flac_is_skipped_reported_and_counted(
    corrupt_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ("--tar-dir", tmp_path, "--files-to-use", "dev-clean.tar.gz", "--num-workers", "2")
    assert run_tool("--target-dir", tmp_path / "out", *args) == 0
    out = capsys.readouterr().out
    for i in (1, 3):
        assert f"skipped: {corrupt_corpus}:LibriSpeech/dev-clean/7/8/7-8-{i:04d}.flac: unreadable audio" in out
    assert "skipped 2 unreadable or unmatched audio files" in out
    assert sorted(p.name for p in (tmp_path / "out" / "dev-clean" / "wav").iterdir()) == [
        "7-8-0000.wav",
        "7-8-0002.wav",
        "7-8-0004.wav",
    ]
    # --strict fails, both on the finished target (skips are remembered in .done) and on a fresh one.
    assert run_tool("--target-dir", tmp_path / "out", *args, "--strict") == 1
    assert run_tool("--target-dir", tmp_path / "fresh", *args, "--strict") == 1
    captured = capsys.readouterr()
    assert captured.out.count("skipped 2 unreadable") == 2
    assert "error: 2 files skipped and --strict was given" in captured.err


def test_manifest_groups() -> None:
    groups = librispeech.manifest_groups(["train-other-500", "train-clean-100", "dev-clean", "test-other"])
    assert groups == {
        "libri_train_manifest.json": ("train-clean-100", "train-other-500"),
        "libri_test_other_manifest.json": ("test-other",),
    }


def test_replaced_tarball_makes_a_stale_done_marker_an_error_naming_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Issue 12: a `.done` marker outliving its tarball used to be trusted forever, with no hint to remove it."""
    tars, target = tmp_path / "tars", tmp_path / "out"
    make_split(tars, "dev-clean", (1.0, 1.2))
    args = ("--target-dir", target, "--tar-dir", tars, "--files-to-use", "dev-clean.tar.gz", "--num-workers", "1")
    assert run_tool(*args) == 0
    marker = json.loads((target / "dev-clean" / ".done").read_text())
    assert marker["tarball"]["size"] == (tars / "dev-clean.tar.gz").stat().st_size
    assert run_tool(*args) == 0  # unchanged tarball: the marker is trusted
    make_split(tars, "dev-clean", (1.0, 1.2, 1.4))  # a new tarball under the same name
    capsys.readouterr()
    assert run_tool(*args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert "dev-clean.tar.gz changed" in err and f"delete {target / 'dev-clean'}" in err
    shutil.rmtree(target / "dev-clean")
    assert run_tool(*args) == 0
    assert len(list((target / "dev-clean" / "wav").iterdir())) == 3
