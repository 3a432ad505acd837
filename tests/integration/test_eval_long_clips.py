"""Evaluation of a manifest holding a 60 s clip: no batch padded with copies, long clips cut, clear results.

A batch padded with copies of its clip up to the batch size multiplied the memory of a long clip by the batch
size (a 60 s clip at batch 20 ended in std::bad_alloc with the full model). The predictor is wrapped to record
the batch shapes it is given.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import src.inference

pytestmark = pytest.mark.mindspore

SR = 16000


@pytest.fixture(autouse=True)
def release_graph_memory(graph_mode_cpu):
    """MindSpore keeps every compiled shape's memory: give it back after each test (60 s shapes are large)."""
    yield
    graph_mode_cpu.ms_memory_recycle()


def write_manifest(folder: Path, clips: dict[str, tuple[np.ndarray, str]]) -> Path:
    rows = []
    for name, (audio, text) in clips.items():
        sf.write(str(folder / f"{name}.wav"), audio, SR)
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        rows.append(f"{folder / name}.wav,{folder / name}.txt\n")
    manifest = folder / f"{'_'.join(clips)}.csv"
    manifest.write_text("".join(rows), encoding="utf-8")
    return manifest


@pytest.fixture(scope="module")
def manifests(speech_clips, tmp_path_factory) -> dict[str, Path]:
    """ "long": a single 60 s clip (speech, silence and a tone); "mixed": the same clip and two short ones."""
    folder = tmp_path_factory.mktemp("long")
    speech, _ = sf.read(str(speech_clips["wav"]), dtype="float32")
    t = np.arange(5 * SR) / SR
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    parts, total = [], 0
    while total < 60 * SR:
        for piece in (speech, np.zeros(SR, np.float32), tone, np.zeros(SR // 2, np.float32)):
            parts.append(piece)
            total += len(piece)
    long = (np.concatenate(parts)[: 60 * SR], "THE QUICK BROWN FOX " * 6)
    return {
        "long": write_manifest(folder, {"long": long}),
        "mixed": write_manifest(folder, {"long": long, "a": (tone[: int(1.5 * SR)], "A"), "b": (tone[:SR], "B")}),
    }


def run_eval(monkeypatch, tiny_model, manifest, out: Path, *options: str) -> tuple[list[tuple], list[dict], int]:
    """eval.py in-process; returns the (features shape, lengths) each predict call saw, the rows, the exit code."""
    import eval as eval_script

    seen: list[tuple] = []
    real = src.inference.cell_predict_fn

    def recording(cell, *args):
        predict = real(cell, *args)

        def wrapped(features, lengths):
            seen.append((features.shape, tuple(int(n) for n in lengths)))
            return predict(features, lengths)

        return wrapped

    monkeypatch.setattr(src.inference, "cell_predict_fn", recording)
    argv = ["--pretrain_ckpt", str(tiny_model), "--test_manifest", str(manifest), "--quiet", "--save_output", str(out)]
    code = eval_script.main(argv + list(options))
    with open(out, newline="", encoding="utf-8") as f:
        return seen, list(csv.DictReader(f)), code


@pytest.mark.slow
@pytest.mark.parametrize("batch", [20, 1])
def test_60s_clip_evaluates_without_copies(monkeypatch, tiny_model, manifests, tmp_path, capsys, batch) -> None:
    """The reported case: one 60 s clip at batch 20 was padded with 19 copies of itself."""
    seen, rows, code = run_eval(
        monkeypatch, tiny_model, manifests["long"], tmp_path / "r.csv", "--batch_size", str(batch)
    )
    assert code == 0
    assert "Test Summary \tAverage WER" in capsys.readouterr().out
    assert len(rows) == 1 and rows[0]["reference"].startswith("THE QUICK BROWN FOX") and int(rows[0]["words"]) == 24
    # One row, the clip itself (6001 frames: within max_eval_seconds, so it runs whole), at any batch size.
    assert seen == [((1, 1, 161, 6144), (6001,))]


@pytest.mark.slow
@pytest.mark.parametrize("batch", [20, 1])
def test_clip_over_max_eval_seconds_is_cut_into_segments(monkeypatch, tiny_model, manifests, tmp_path, batch) -> None:
    out = tmp_path / "r.csv"
    options = ["--batch_size", str(batch), "--set", "DataConfig.max_eval_seconds=20"]
    seen, rows, code = run_eval(monkeypatch, tiny_model, manifests["mixed"], out, *options)
    assert code == 0 and len(rows) == 3 and len({r["source"] for r in rows}) == 3  # every clip scored once
    calls = 1 if batch == 20 else 2  # the short clips come first (in order of duration), then the segments
    regular, segments = seen[:calls], seen[calls:]
    # No copies anywhere: the short clips fill exactly their own rows.
    assert sorted(n for _, lengths in regular for n in lengths) == [101, 151]
    assert [shape[0] for shape, _ in regular] == ([2] if batch == 20 else [1, 1])
    assert len(segments) >= 3 and all(shape[0] == 1 for shape, _ in segments)
    assert all(lengths[0] <= 2001 for _, lengths in segments)  # at most 20 s each
    assert sum(lengths[0] for _, lengths in segments) == pytest.approx(6001, abs=5)
    long_row = next(r for r in rows if r["source"].endswith(":1"))
    assert int(long_row["words"]) == 24 and long_row["hypothesis"]  # scored once, on the joined segments


@pytest.mark.slow
def test_batch_seconds_caps_eval_batches(monkeypatch, tiny_model, manifests, tmp_path) -> None:
    options = ["--batch_seconds", "1.5", "--set", "DataConfig.max_eval_seconds=20"]
    seen, rows, code = run_eval(monkeypatch, tiny_model, manifests["mixed"], tmp_path / "r.csv", *options)
    assert code == 0 and len(rows) == 3
    from src import shapes

    assert [lengths for _, lengths in seen[:2]] == [(101,), (151,)]  # 1.5 s holds one short clip per batch
    for shape, lengths in seen:
        assert shape[0] * shape[3] <= 150 or shape[0] == 1
        assert shape[3] == shapes.bucket_length(max(lengths))


def test_exported_static_batch_gets_empty_rows_not_copies(tiny_model) -> None:
    from src.transcription import SegmentPredictor

    seen = []

    def predict(features, lengths):
        seen.append((features.copy(), lengths.copy()))
        n, _, _, t = features.shape
        return np.ones((n, (t + 1) // 2, 29), np.float32), (lengths + 1) // 2

    features = np.random.default_rng(0).standard_normal((161, 90)).astype(np.float32)
    out = SegmentPredictor(predict, frames=128, batch=3)(features)
    assert out.shape == (45, 29)
    batch, lengths = seen[0]
    assert list(lengths) == [90, 0, 0]
    assert np.array_equal(batch[0, 0, :, :90], features) and not batch[1:].any()


def test_eval_releases_memory_when_the_length_changes(monkeypatch, tiny_model, manifests, tmp_path, graph_mode_cpu):
    """Batches come in order of duration: one release per new padded length, none within a length."""
    released = []
    monkeypatch.setattr(graph_mode_cpu, "ms_memory_recycle", lambda: released.append(1))
    options = ["--batch_size", "1", "--set", "DataConfig.max_eval_seconds=20"]
    seen, rows, code = run_eval(monkeypatch, tiny_model, manifests["mixed"], tmp_path / "r.csv", *options)
    assert code == 0 and len(rows) == 3
    changes = sum(1 for a, b in zip(seen, seen[1:]) if a[0] != b[0])
    assert changes >= 2 and len(released) == changes
    calls = len(seen)
    seen2, _, _ = run_eval(
        monkeypatch, tiny_model, manifests["mixed"], tmp_path / "r2.csv", *options,
        "--set", "release_memory_on_new_shape=false",
    )  # fmt: skip
    assert len(released) == changes and len(seen2) == calls  # switched off: no more releases
