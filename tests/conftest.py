"""Test-suite set-up: MindSpore availability policy and shared fixtures."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FSDD = REPO.parent / "shared" / "data" / "fsdd"


def pytest_configure(config):
    os.environ.setdefault("GLOG_v", "3")
    if os.environ.get("DS2_REQUIRE_MINDSPORE") == "1":
        try:
            import mindspore  # noqa: F401
        except ImportError as err:  # CI: a missing MindSpore must fail, not skip
            raise pytest.UsageError(f"DS2_REQUIRE_MINDSPORE=1 but MindSpore cannot be imported: {err}") from err


@pytest.fixture(scope="session")
def labels() -> list[str]:
    return json.loads((REPO / "labels.json").read_text())


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    if not (FSDD / "train.csv").is_file():
        pytest.skip(f"FSDD sample data not found at {FSDD}")
    return FSDD


@pytest.fixture()
def digit_manifest(fsdd_dir, tmp_path):
    """make(rows) -> a CSV (absolute paths) of the FSDD training clips at those row positions."""

    def make(rows: list[int] | range, name: str = "digits.csv") -> Path:
        lines = (fsdd_dir / "train.csv").read_text().splitlines()
        pairs = (lines[i].split(",") for i in rows)
        path = tmp_path / name
        path.write_text("".join(f"{fsdd_dir / wav},{fsdd_dir / txt}\n" for wav, txt in pairs))
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
