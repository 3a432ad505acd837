"""Integration tests run MindSpore in graph mode on the CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def graph_mode_cpu():
    ms = pytest.importorskip("mindspore")
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return ms
