"""Test-suite set-up: MindSpore availability policy and shared fixtures."""

from __future__ import annotations

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
