"""Test-suite set-up: MindSpore availability policy, no silent skips in CI, and shared fixtures.

The recorded-speech tests train on spoken digits that espeak-ng synthesizes into a session folder, so every test
runs on a fresh clone (no ../shared data needed).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DIGITS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
# (espeak-ng voice, words per minute, pitch): six speakers; clip i says DIGITS[i % 10] in voice i // 10.
DIGIT_VOICES = (
    ("en-us", 160, 50),
    ("en-gb", 150, 40),
    ("en+m3", 170, 60),
    ("en+f2", 140, 45),
    ("en-us+f3", 160, 35),
    ("en-gb-scotland", 150, 55),
)
# Tests allowed to skip under DS2_REQUIRE_MINDSPORE=1 (node ids): only skips that are by design.
ALLOWED_SKIPS: frozenset[str] = frozenset()


def pytest_configure(config):
    os.environ.setdefault("GLOG_v", "3")
    if os.environ.get("DS2_REQUIRE_MINDSPORE") == "1":
        try:
            import mindspore  # noqa: F401
        except ImportError as err:  # CI: a missing MindSpore must fail, not skip
            raise pytest.UsageError(f"DS2_REQUIRE_MINDSPORE=1 but MindSpore cannot be imported: {err}") from err


def _fail_skip(report) -> None:
    """Under DS2_REQUIRE_MINDSPORE=1 (CI) a skip hides an untested feature: report it as a failure instead."""
    if os.environ.get("DS2_REQUIRE_MINDSPORE") != "1" or not report.skipped or report.nodeid in ALLOWED_SKIPS:
        return
    if getattr(report, "wasxfail", None) is not None:
        return  # an expected failure is not a skip
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under DS2_REQUIRE_MINDSPORE=1 (CI allows no skips): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.fixture(scope="session")
def labels() -> list[str]:
    return json.loads((REPO / "labels.json").read_text())


@pytest.fixture(scope="session")
def spoken_digits(tmp_path_factory) -> Path:
    """A folder like FSDD's: wav/{i}.wav (16 kHz), txt/{i}.txt and train.csv (relative paths), 60 clips.

    Clip i says DIGITS[i % 10] in voice DIGIT_VOICES[i // 10], synthesized by espeak-ng (deterministic for a given
    espeak-ng version); a missing espeak-ng is an error, not a skip.
    """
    from tools.make_sample_corpus import SAMPLE_RATE, synthesize

    root = tmp_path_factory.mktemp("spoken_digits")
    (root / "wav").mkdir()
    (root / "txt").mkdir()
    rows = []
    for i in range(len(DIGITS) * len(DIGIT_VOICES)):
        voice, speed, pitch = DIGIT_VOICES[i // len(DIGITS)]
        word = DIGITS[i % len(DIGITS)]
        audio = synthesize(word, voice, speed, pitch)
        voiced = np.flatnonzero(np.abs(audio) > 0.01)  # trim espeak's silence: shorter clips, faster tests
        audio = audio[max(0, voiced[0] - 800) : voiced[-1] + 800]
        sf.write(root / "wav" / f"{i}.wav", np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
        (root / "txt" / f"{i}.txt").write_text(word + "\n", encoding="utf-8")
        rows.append(f"wav/{i}.wav,txt/{i}.txt\n")
    (root / "train.csv").write_text("".join(rows), encoding="utf-8")
    return root


@pytest.fixture()
def digit_manifest(spoken_digits, tmp_path):
    """make(rows) -> a CSV (absolute paths) of the generated spoken-digit clips at those row positions."""

    def make(rows: list[int] | range, name: str = "digits.csv") -> Path:
        lines = (spoken_digits / "train.csv").read_text().splitlines()
        pairs = (lines[i].split(",") for i in rows)
        path = tmp_path / name
        path.write_text("".join(f"{spoken_digits / wav},{spoken_digits / txt}\n" for wav, txt in pairs))
        return path

    return make


def lab_json_to_csv(json_path: str | Path, csv_path: str | Path) -> None:
    """The lab manual's json_to_csv.py, as the lab has it: the JSON read line by line, rows appended to the CSV."""
    with open(json_path) as f:
        for line in f:
            data = json.loads(line)
            root_path = data["root_path"]
            with open(csv_path, "a") as out:
                writer = csv.writer(out)
                for sample in data["samples"]:
                    wav = os.path.join(root_path, sample["wav_path"])
                    txt = os.path.join(root_path, sample["transcript_path"])
                    writer.writerow([wav, txt])


@pytest.fixture(scope="session")
def lab_converter():
    """The lab's own line-by-line JSON -> CSV conversion (a faithful copy), to check our manifests against it."""
    return lab_json_to_csv
