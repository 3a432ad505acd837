"""src/atomic.py: whole file or nothing, the old file kept on failure, failures named."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from src import atomic


def _enospc(tmp):
    with open(tmp, "w") as f:
        f.write("half a fi")  # a partial file, then the disk fills
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_text_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failure_names_path_and_reason_and_keeps_old_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(atomic.AtomicWriteError, match=r"could not write .*a\.json: No space left on device"):
        atomic.atomic_write(target, _enospc)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_try_write_logs_and_returns_false(tmp_path, caplog):
    target = tmp_path / "sub" / "r.csv"
    with caplog.at_level(logging.ERROR):
        assert atomic.try_atomic_write(target, _enospc, "results") is False
    assert "results not saved" in caplog.text and "r.csv" in caplog.text and "No space left" in caplog.text
    assert list((tmp_path / "sub").iterdir()) == []


def test_leftovers_of_the_writer_are_removed(tmp_path):
    def produce(tmp):
        tmp.with_suffix(".tmp").write_text("library temp")
        raise RuntimeError("boom")

    with pytest.raises(atomic.AtomicWriteError, match="RuntimeError: boom"):
        atomic.atomic_write(tmp_path / "m.ckpt", produce, keep_suffix=True, leftovers=lambda t: [t.with_suffix(".tmp")])
    assert list(tmp_path.iterdir()) == []


def test_proven_bad_content_is_discarded(tmp_path):
    def verify(path):
        raise atomic.CorruptWrite("bad bytes")

    with pytest.raises(atomic.AtomicWriteError, match="bad bytes"):
        atomic.atomic_write(tmp_path / "x.bin", lambda t: t.write_bytes(b"1"), verify=verify)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_back_is_kept_not_deleted(tmp_path, caplog):
    def verify(path):
        raise MemoryError()

    with caplog.at_level(logging.WARNING):
        atomic.atomic_write(tmp_path / "x.bin", lambda t: t.write_bytes(b"1"), verify=verify)
    assert (tmp_path / "x.bin").read_bytes() == b"1"
    assert "could not read back" in caplog.text and "keeping it" in caplog.text


def test_read_only_directory_is_reported(tmp_path, monkeypatch, caplog):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes into a chmod-ed folder anyway: fail the rename as a read-only one would

        def refuse(src, dst):
            raise PermissionError(13, "Permission denied", str(dst))

        monkeypatch.setattr(atomic.os, "replace", refuse)
    ro.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING):
            assert atomic.try_write_text(ro / "f.txt", "x") is False
    finally:
        ro.chmod(0o700)
    assert list(ro.iterdir()) == []  # nothing partial left
    assert str(ro / "f.txt") in caplog.text


def test_keep_suffix_and_stale_temps(tmp_path):
    assert atomic.temp_path(tmp_path / "c.png", keep_suffix=True).name.endswith(".tmp.png")
    assert atomic.temp_path(tmp_path / "c.png").name.endswith(".tmp")
    dead = tmp_path / ".c.png.999999999.tmp.png"  # no such pid
    dead.write_text("x")
    dead_ms = tmp_path / ".DeepSpeech-1_2.ckpt.999999999.tmp.tmp"  # MindSpore's own temp of a killed save
    dead_ms.write_text("x")
    mine = atomic.temp_path(tmp_path / "d.csv")
    mine.write_text("x")
    (tmp_path / ".train.lock").write_text("")
    assert atomic.stale_temps(tmp_path) == [dead_ms, dead]


def test_before_replace_runs_last_and_its_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    target.write_text("old")
    seen = []
    atomic.atomic_write(
        target, lambda tmp: tmp.write_text("new"), before_replace=lambda tmp: seen.append(tmp.read_text())
    )
    assert seen == ["new"] and target.read_text() == "new"
    with pytest.raises(atomic.AtomicWriteError, match=r"a\.bin: No space left on device"):
        atomic.atomic_write(target, lambda tmp: tmp.write_text("newer"), before_replace=_enospc)
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"] and target.read_text() == "new"


# ------------------------------------------------------------------------------------ src/digest.py: sidecars
def test_sidecar_digest_streams_and_names_the_file_on_mismatch(tmp_path):
    import hashlib

    from src import digest

    data = os.urandom(3 * 1024 + 5)
    path = tmp_path / "m.ckpt"
    path.write_bytes(data)
    assert digest.digest_path(path) == tmp_path / "m.ckpt.sha256"
    assert digest.sha256_file(path, chunk=1000) == hashlib.sha256(data).hexdigest()  # several chunks, one hash
    assert digest.check_digest(path) is False  # no sidecar: nothing to check (a model-zoo file)
    atomic.write_text(digest.digest_path(path), digest.digest_line(digest.sha256_file(path), path))
    assert digest.digest_path(path).read_text() == f"{hashlib.sha256(data).hexdigest()}  m.ckpt\n"  # sha256sum -c
    assert digest.check_digest(path) is True
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(digest.DigestMismatch, match=r"m\.ckpt does not match its sha256 digest in m\.ckpt\.sha256"):
        digest.check_digest(path)
    digest.digest_path(path).write_text("garbage\n")
    with pytest.raises(digest.DigestMismatch, match=r"m\.ckpt\.sha256 does not hold a sha256 line"):
        digest.check_digest(path)
    digest.remove_with_digest(path)
    assert list(tmp_path.iterdir()) == []
