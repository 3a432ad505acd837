"""tools/json_to_csv.py: whole-document and line-per-document JSON, overwrite not append, absolute paths, --verify,
--sort."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src.manifest import read_manifest
from tools import json_to_csv

# name -> duration in seconds; listed out of duration order on purpose.
UTTERANCES = {"b": 0.5, "a": 0.25, "c": 0.75}


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """wav/ and txt/ files for UTTERANCES, plus a deepspeech.pytorch manifest with relative paths."""
    for sub in ("wav", "txt"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for name, seconds in UTTERANCES.items():
        sf.write(str(tmp_path / "data" / "wav" / f"{name}.wav"), np.zeros(int(seconds * 16000)), 16000)
        (tmp_path / "data" / "txt" / f"{name}.txt").write_text(name.upper(), encoding="utf-8")
    doc = {"root_path": str(tmp_path / "data"), "samples": [sample(name) for name in UTTERANCES]}
    (tmp_path / "manifest.json").write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return tmp_path


def sample(name: str) -> dict[str, str]:
    return {"wav_path": f"wav/{name}.wav", "transcript_path": f"txt/{name}.txt"}


def expected_rows(root: Path, names: list[str]) -> str:
    return "".join(f"{root}/data/wav/{n}.wav,{root}/data/txt/{n}.txt\n" for n in names)


def test_twice_gives_one_absolute_row_per_sample(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(dataset)  # relative arguments; the rows must still be absolute
    for _ in range(2):
        assert json_to_csv.main(["--json", "manifest.json", "--csv", "out/manifest.csv"]) == 0
    assert (dataset / "out" / "manifest.csv").read_text(encoding="utf-8") == expected_rows(dataset, list(UTTERANCES))
    rows = read_manifest(dataset / "out" / "manifest.csv")
    assert [s.wav_path for s in rows] == [dataset / "data" / "wav" / f"{n}.wav" for n in UTTERANCES]
    assert list((dataset / "out").iterdir()) == [dataset / "out" / "manifest.csv"]  # no temp file left


def test_sort_orders_rows_by_duration(dataset: Path) -> None:
    assert json_to_csv.main(["--json", str(dataset / "manifest.json"), "--csv", str(dataset / "s.csv"), "--sort"]) == 0
    assert (dataset / "s.csv").read_text(encoding="utf-8") == expected_rows(dataset, ["a", "b", "c"])


def test_verify_names_the_missing_file_and_the_sample(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    (dataset / "data" / "txt" / "c.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"manifest\.json sample 2: transcript file not found: .*c\.txt"):
        json_to_csv.convert(dataset / "manifest.json", dataset / "v.csv", verify=True)
    assert (
        json_to_csv.main(["--json", str(dataset / "manifest.json"), "--csv", str(dataset / "v.csv"), "--verify"]) == 2
    )
    assert f"transcript file not found: {dataset / 'data' / 'txt' / 'c.txt'}" in capsys.readouterr().err
    assert not (dataset / "v.csv").exists()


def test_lab_line_per_document_form(dataset: Path) -> None:
    lines = [{"root_path": str(dataset / "data"), "samples": [sample(n)]} for n in ("c", "a")]
    (dataset / "lines.json").write_text("\n".join(json.dumps(d) for d in lines) + "\n", encoding="utf-8")
    assert json_to_csv.main(["--json", str(dataset / "lines.json"), "--csv", str(dataset / "l.csv"), "--verify"]) == 0
    assert (dataset / "l.csv").read_text(encoding="utf-8") == expected_rows(dataset, ["c", "a"])


def test_inline_text_and_missing_manifest_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "nemo.json").write_text('{"audio_filepath": "x.wav", "text": "X"}\n', encoding="utf-8")
    assert json_to_csv.main(["--json", str(tmp_path / "nemo.json"), "--csv", str(tmp_path / "n.csv")]) == 2
    assert f"{tmp_path / 'nemo.json'}: sample has inline text and no transcript file" in capsys.readouterr().err
    assert json_to_csv.main(["--json", str(tmp_path / "absent.json"), "--csv", str(tmp_path / "n.csv")]) == 2
    assert f"manifest not found: {tmp_path / 'absent.json'}" in capsys.readouterr().err
