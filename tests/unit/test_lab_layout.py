"""The lab manual's data steps: `python tools/librispeech.py` with no options on the manual's folder layout, one-line
JSON manifests that the lab's line-by-line json_to_csv.py reads, and both manifest forms read by ours."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src.manifest import read_manifest
from tools import json_to_csv, librispeech
from tools.make_sample_corpus import CorpusItem, write_librispeech_tarball

SPLITS = {"train-clean-100": 3, "dev-clean": 1, "dev-other": 1, "test-clean": 2, "test-other": 1}
MANUAL_FOLDERS = {"train-clean-100": "train", "dev-clean": "val", "dev-other": "val", "test-clean": "test_clean",
                  "test-other": "test_other"}  # fmt: skip


def tone(seconds: float) -> bytes:
    x = 0.3 * np.sin(2 * np.pi * 330.0 * np.arange(round(seconds * 16000)) / 16000)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five tarballs in one folder (1.5-2.5 s clips, so the training duration filter keeps them)."""
    folder = tmp_path_factory.mktemp("flat")
    for k, (split, n) in enumerate(SPLITS.items()):
        items = [CorpusItem(f"{100 + k}-{200 + k}-{i:04d}", f"IT'S CLIP {i}", tone(1.5 + i / 2)) for i in range(n)]
        write_librispeech_tarball(folder / f"{split}.tar.gz", split, items)
    return folder


def manual_layout(flat: Path, root: Path) -> Path:
    """The tarballs where the lab manual puts them: LibriSpeech_dataset/{train,val,test_clean,test_other}/."""
    for split, folder in MANUAL_FOLDERS.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(flat / f"{split}.tar.gz", root / folder / f"{split}.tar.gz")
    return root


def test_no_options_find_the_manuals_layout_and_write_one_line_manifests(flat, tmp_path, monkeypatch, lab_converter):
    manual_layout(flat, tmp_path / "LibriSpeech_dataset")
    monkeypatch.chdir(tmp_path)
    assert librispeech.main([]) == 0
    target = tmp_path / "LibriSpeech_dataset"
    expected = {"libri_train_manifest.json": 3, "libri_val_manifest.json": 2, "libri_test_clean_manifest.json": 2,
                "libri_test_other_manifest.json": 1}  # fmt: skip
    for name, count in expected.items():
        lines = (target / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1  # one JSON document per line, as deepspeech.pytorch writes it
        doc = json.loads(lines[0])
        assert doc["root_path"] == str(target.resolve()) and len(doc["samples"]) == count
        csv_path = tmp_path / name.replace(".json", ".csv")
        lab_converter(target / name, csv_path)  # the lab's own reader
        rows = [line.split(",") for line in csv_path.read_text().splitlines()]
        assert len(rows) == count and all(Path(w).is_file() and Path(t).is_file() for w, t in rows)
        assert [s.wav_path for s in read_manifest(csv_path)] == [s.wav_path for s in read_manifest(target / name)]
    assert (target / "train-clean-100" / "wav").is_dir() and (target / "val" / "dev-clean.tar.gz").is_file()


def test_tarballs_in_one_flat_folder_or_a_subfolder_are_found(flat, tmp_path):
    nested = tmp_path / "downloads" / "librispeech"
    shutil.copytree(flat, nested)
    args = ["--target-dir", str(tmp_path / "out"), "--tar-dir", str(tmp_path / "downloads"), "--num-workers", "1"]
    assert librispeech.main(args) == 0
    assert len(read_manifest(tmp_path / "out" / "libri_test_clean_manifest.json")) == 2


def test_a_tarball_found_twice_is_a_one_line_error(flat, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(flat / "dev-clean.tar.gz", tmp_path / folder / "dev-clean.tar.gz")
    args = ["--target-dir", str(tmp_path / "out"), "--tar-dir", str(tmp_path), "--files-to-use", "dev-clean.tar.gz"]
    assert librispeech.main(args) == 1
    err = capsys.readouterr().err
    assert "dev-clean.tar.gz found 2 times" in err and err.count("\n") == 1


def test_manifest_dir_puts_the_json_where_deepspeech_pytorch_would(flat, tmp_path):
    args = ["--target-dir", str(tmp_path / "data"), "--tar-dir", str(flat), "--manifest-dir", str(tmp_path / "m")]
    assert librispeech.main([*args, "--files-to-use", "test-other.tar.gz"]) == 0
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["libri_test_other_manifest.json"]
    assert len(read_manifest(tmp_path / "m" / "libri_test_other_manifest.json")) == 1


def test_our_reader_takes_indented_and_one_line_json_alike(flat, tmp_path):
    args = ["--target-dir", str(tmp_path / "data"), "--tar-dir", str(flat), "--files-to-use", "test-clean.tar.gz"]
    assert librispeech.main(args) == 0
    one_line = tmp_path / "data" / "libri_test_clean_manifest.json"
    indented = tmp_path / "indented.json"
    indented.write_text(json.dumps(json.loads(one_line.read_text()), indent=2))
    json_to_csv.convert(one_line, tmp_path / "a.csv")
    json_to_csv.convert(indented, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 2


def test_download_without_tar_dir_goes_into_the_manuals_folders(flat, tmp_path, monkeypatch):
    fetched = []

    def fake_download(url, dest, md5, retries, timeout, progress):
        fetched.append((url.rsplit("/", 1)[1], dest))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(flat / dest.name, dest)

    monkeypatch.setattr(librispeech, "download_file", fake_download)
    target = tmp_path / "LibriSpeech_dataset"
    assert librispeech.main(["--target-dir", str(target), "--download", "--files-to-use", "dev-other.tar.gz"]) == 0
    assert fetched == [("dev-other.tar.gz", target / "val" / "dev-other.tar.gz")]
    assert librispeech.main(["--target-dir", str(target), "--download", "--files-to-use", "dev-other.tar.gz"]) == 0
    assert len(fetched) == 1  # found in the manual's folder the second time
