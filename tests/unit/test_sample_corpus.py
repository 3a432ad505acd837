"""tools/make_sample_corpus.py: a small vocabulary inside labels.json, seed-determined sentences, LibriSpeech layout,
and (when espeak-ng is installed) synthesized audio of the right length that tools/librispeech.py prepares."""

from __future__ import annotations

import io
import random
import re
import shutil
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from src.text import load_labels
from tools import librispeech
from tools import make_sample_corpus as msc

REPO = Path(__file__).resolve().parents[2]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_vocabulary_is_small_and_inside_the_labels() -> None:
    words = msc.vocabulary()
    assert 40 <= len(words) <= 60
    assert {"DON'T", "IT'S", "I'M"} <= set(words)
    labels = set(load_labels(REPO / "labels.json")[:-1])
    sentences = [msc.make_sentence(random.Random(i)) for i in range(200)]
    assert all(set(s) <= labels for s in sentences)
    assert {w for s in sentences for w in s.split()} <= set(words)


def test_plan_is_a_function_of_split_count_and_seed() -> None:
    plan = msc.plan_split("train-clean-100", 12, seed=3)
    assert plan == msc.plan_split("train-clean-100", 12, seed=3)
    assert [u.text for u in plan] != [u.text for u in msc.plan_split("train-clean-100", 12, seed=4)]
    assert len({u.speaker for u in plan}) == 4 and len({u.utt_id for u in plan}) == 12
    dev = msc.plan_split("dev-clean", 12, seed=3)
    assert len({u.speaker for u in dev}) == 2 and not {u.speaker for u in dev} & {u.speaker for u in plan}
    assert all(re.fullmatch(r"\d+-\d+-\d{4}", u.utt_id) for u in plan + dev)


def test_write_split_sentences(tmp_path: Path) -> None:
    sentences = msc.write_split_sentences(tmp_path / "lm.txt", "train-clean-100", 7, seed=0)
    assert (tmp_path / "lm.txt").read_text(encoding="utf-8").splitlines() == sentences
    assert sentences == [u.text for u in msc.plan_split("train-clean-100", 7, seed=0)]


def test_tarball_has_the_librispeech_layout_and_is_reproducible(tmp_path: Path) -> None:
    items = [msc.CorpusItem(f"12-34-{i:04d}", f"HELLO {i}", b"flac%d" % i) for i in range(2)]
    items.append(msc.CorpusItem("56-78-0000", "IT'S ME", b"flac"))
    msc.write_librispeech_tarball(tmp_path / "a.tar.gz", "dev-clean", items)
    msc.write_librispeech_tarball(tmp_path / "b.tar.gz", "dev-clean", items[::-1])
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    assert files == {
        "LibriSpeech/dev-clean/12/34/12-34-0000.flac": b"flac0",
        "LibriSpeech/dev-clean/12/34/12-34-0001.flac": b"flac1",
        "LibriSpeech/dev-clean/12/34/12-34.trans.txt": b"12-34-0000 HELLO 0\n12-34-0001 HELLO 1\n",
        "LibriSpeech/dev-clean/56/78/56-78-0000.flac": b"flac",
        "LibriSpeech/dev-clean/56/78/56-78.trans.txt": b"56-78-0000 IT'S ME\n",
    }


def test_missing_espeak_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(msc.shutil, "which", lambda name: None)
    assert msc.main(["--out-dir", str(tmp_path), "--utterances", "1"]) == 1
    assert "espeak-ng not found on PATH; install it with `apt-get install espeak-ng`" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@needs_espeak
def test_synthesized_corpus_is_speech_of_the_right_length_and_prepares(tmp_path: Path) -> None:
    args = ["--out-dir", str(tmp_path / "tars"), "--splits", "train-clean-100,test-clean", "--utterances", "4"]
    assert msc.main([*args, "--seed", "1", "--num-workers", "2", "--sentences-out", str(tmp_path / "lm.txt")]) == 0
    with tarfile.open(tmp_path / "tars" / "test-clean.tar.gz") as tf:
        flacs = [tf.extractfile(m).read() for m in tf.getmembers() if m.name.endswith(".flac")]
    assert len(flacs) == 4
    for data in flacs:
        info = sf.info(io.BytesIO(data))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert msc.MIN_SECONDS <= info.duration <= msc.MAX_SECONDS
    lines = (tmp_path / "lm.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [u.text for u in msc.plan_split("train-clean-100", 4, seed=1)]
    target = tmp_path / "prepared"
    files = "train-clean-100.tar.gz,test-clean.tar.gz"
    assert (
        librispeech.main(["--target-dir", str(target), "--tar-dir", str(tmp_path / "tars"), "--files-to-use", files])
        == 0
    )
    assert sorted(p.name for p in target.glob("*.json")) == [
        "libri_test_clean_manifest.json",
        "libri_train_manifest.json",
    ]


def test_digits_grammar_says_two_or_three_digits() -> None:
    assert len(msc.vocabulary("digits")) == 10
    plan = msc.plan_split("train-clean-100", 30, seed=0, grammar="digits")
    assert all(2 <= len(u.text.split()) <= 3 and set(u.text.split()) <= set(msc.vocabulary("digits")) for u in plan)
    assert [u.text for u in plan] == [u.text for u in msc.plan_split("train-clean-100", 30, 0, "digits")]
    assert [u.text for u in msc.plan_split("train-clean-100", 5, seed=0)] != [u.text for u in plan[:5]]
