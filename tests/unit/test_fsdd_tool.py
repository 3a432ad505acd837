"""tools/fsdd.py on a tiny fake FSDD (12 digit words spoken by espeak-ng at 8 kHz): layout, split, formats, re-runs;
and, where the shared FSDD copy exists, byte-identical manifest lines against it."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools.fsdd import COMMIT, main, parse_name, split_of

NAMES = [
    "0_george_0", "1_jackson_3", "2_lucas_4", "3_nicolas_1", "4_theo_2", "5_yweweler_0",  # index < 5: test
    "6_george_5", "7_jackson_10", "8_lucas_49", "9_nicolas_20", "0_theo_33", "1_yweweler_7",  # index >= 5: train
]  # fmt: skip
TEST_NAMES = set(NAMES[:6])
WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
RESAMPLERS = ["scipy", pytest.param("sox", marks=pytest.mark.skipif(not shutil.which("sox"), reason="no sox"))]

VOICES = {"george": "en-us", "jackson": "en-gb", "lucas": "en+m3", "nicolas": "en+f2", "theo": "en-us+f3"}
VOICES["yweweler"] = "en-gb-scotland"


def make_repo(root: Path) -> Path:
    """A fake FSDD checkout: repo/recordings/NAME.wav at 8 kHz mono 16-bit, plus an unrelated README.

    The recordings are the digit words spoken by espeak-ng, one voice per speaker name.
    """
    from src.audio import resample
    from tools.make_sample_corpus import synthesize

    repo = root / "repo"
    (repo / "recordings").mkdir(parents=True)
    (repo / "README.md").write_text("fake FSDD\n")
    for name in NAMES:
        digit, speaker, _ = name.split("_")
        audio = resample(synthesize(WORDS[int(digit)].lower(), VOICES[speaker], 160, 50), 16000, 8000)
        sf.write(repo / "recordings" / f"{name}.wav", np.clip(audio, -1, 0.99), 8000, subtype="PCM_16")
    return repo


@pytest.fixture(scope="module")
def fake_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("fsdd_src"))


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def run_tool(out: Path, source: Path, resampler: str) -> None:
    assert main(["--out-dir", str(out), "--source-dir", str(source), "--resampler", resampler, "--jobs", "2"]) == 0


def check_wavs(out: Path, repo: Path) -> None:
    assert sorted(p.stem for p in (out / "wav").iterdir()) == sorted(NAMES)
    for name in NAMES:
        info = sf.info(str(out / "wav" / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert info.frames == 2 * sf.info(str(repo / "recordings" / f"{name}.wav")).frames
        assert (out / "txt" / f"{name}.txt").read_text() == WORDS[int(name[0])] + "\n"


def check_manifests(out: Path) -> None:
    for split in ("train", "test"):
        csv_lines = (out / f"{split}.csv").read_text().splitlines()
        json_rows = [json.loads(line) for line in (out / f"{split}.json").read_text().splitlines()]
        names = [line.split(",")[0][4:-4] for line in csv_lines]
        assert set(names) == (TEST_NAMES if split == "test" else set(NAMES) - TEST_NAMES)
        assert [r["audio_filepath"][4:-4] for r in json_rows] == names  # same order in both manifests
        assert csv_lines == [f"wav/{n}.wav,txt/{n}.txt" for n in names]
        json_lines = (out / f"{split}.json").read_text().splitlines()
        for name, line, row in zip(names, json_lines, json_rows):
            assert list(row) == ["audio_filepath", "text", "duration"]
            assert row["text"] == WORDS[int(name[0])] and row["audio_filepath"] == f"wav/{name}.wav"
            frames = sf.info(str(out / row["audio_filepath"])).frames
            assert row["duration"] == round(frames / 16000, 4)
            assert line == json.dumps(row)  # ", " and ": " separators, as deepspeech.pytorch writes them
        exact = [(sf.info(str(out / "wav" / f"{n}.wav")).frames, n) for n in names]
        assert exact == sorted(exact)  # duration ascending, ties by name


@pytest.mark.parametrize("resampler", RESAMPLERS)
def test_builds_shared_layout(tmp_path: Path, fake_repo: Path, resampler: str) -> None:
    out = tmp_path / "fsdd"
    run_tool(out, fake_repo, resampler)
    top = sorted(p.name for p in out.iterdir())
    assert top == ["README.md", "test.csv", "test.json", "train.csv", "train.json", "txt", "wav"]
    assert not list(out.rglob(".*"))  # no temporary files left behind
    check_wavs(out, fake_repo)
    check_manifests(out)
    readme = (out / "README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "| test | 6 |" in readme and "| train | 6 |" in readme


@pytest.mark.parametrize("resampler", RESAMPLERS)
def test_rerun_is_identical_and_skips_finished_files(tmp_path: Path, fake_repo: Path, resampler: str) -> None:
    out = tmp_path / "fsdd"
    run_tool(out, fake_repo, resampler)
    first = snapshot(out)
    run_tool(out, fake_repo / "recordings", resampler)  # the recordings/ folder itself is accepted too
    assert snapshot(out) == first  # same bytes, nothing rewritten (mtimes unchanged)
    (out / "wav" / "8_lucas_49.wav").unlink()
    (out / "train.csv").write_text("stale\n")
    run_tool(out, fake_repo, resampler)
    again = snapshot(out)
    assert again.keys() == first.keys()
    assert again["train.csv"][0] == first["train.csv"][0]
    assert again["wav/8_lucas_49.wav"][0] == first["wav/8_lucas_49.wav"][0]  # reconverted bit-exactly (sox -R)


def make_zip(path: Path, repo: Path, extra: dict[str, bytes] | None = None) -> Path:
    prefix = f"free-spoken-digit-dataset-{COMMIT}"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/README.md", "fake\n")
        for wav in sorted((repo / "recordings").iterdir()):
            zf.write(wav, f"{prefix}/recordings/{wav.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_download_from_url_extracts_recordings(tmp_path: Path, fake_repo: Path) -> None:
    archive = make_zip(tmp_path / "fsdd.zip", fake_repo)
    out = tmp_path / "fsdd"
    args = ["--out-dir", str(out), "--download", "--url", archive.as_uri(), "--resampler", "scipy"]
    assert main(args) == 0
    check_wavs(out, fake_repo)
    check_manifests(out)
    assert (out / ".download" / "fsdd.zip").is_file() and (out / ".download" / "recordings" / ".done").is_file()
    first = snapshot(out)
    archive.unlink()  # a re-run reuses the kept download: no fetch needed
    assert main(args) == 0
    assert snapshot(out) == first


@pytest.mark.parametrize("member", ["../evil.wav", "/abs/recordings/0_x_0.wav", "a/../../recordings/0_x_0.wav"])
def test_download_refuses_unsafe_members(
    tmp_path: Path, fake_repo: Path, member: str, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_zip(tmp_path / "bad.zip", fake_repo, {member: b"x"})
    out = tmp_path / "fsdd"
    assert main(["--out-dir", str(out), "--download", "--url", archive.as_uri()]) == 1
    err = capsys.readouterr().err
    assert "unsafe archive " in err and f"bad.zip: member {member!r}" in err
    assert not (out / "wav").exists() and not (tmp_path / "evil.wav").exists()


def test_download_failure_is_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = (tmp_path / "missing.zip").as_uri()
    assert main(["--out-dir", str(tmp_path / "o"), "--download", "--url", url]) == 1
    err = capsys.readouterr().err
    assert f"download of {url} failed" in err and "--source-dir" in err
    assert not list((tmp_path / "o" / ".download").glob("*"))  # no partial archive kept


def test_bad_sources_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out-dir", str(tmp_path / "o"), "--source-dir", str(tmp_path / "nope")]) == 1
    assert "source directory not found" in capsys.readouterr().err
    (tmp_path / "src").mkdir()
    assert main(["--out-dir", str(tmp_path / "o"), "--source-dir", str(tmp_path / "src")]) == 1
    assert "no FSDD recordings" in capsys.readouterr().err
    sf.write(tmp_path / "src" / "hello.wav", np.zeros(80, dtype=np.float32), 8000)
    assert main(["--out-dir", str(tmp_path / "o"), "--source-dir", str(tmp_path / "src")]) == 1
    assert "hello.wav" in capsys.readouterr().err


def test_names_and_split() -> None:
    assert parse_name("7_theo_12.wav") == (7, "theo", 12)
    assert [split_of(f"1_x_{i}.wav") for i in (0, 4, 5, 49)] == ["test", "test", "train", "train"]
    with pytest.raises(ValueError, match="not an FSDD recording name"):
        parse_name("7_theo.wav")
