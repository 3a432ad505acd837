"""src/dataset.py, src/manifest.py, src/text.py: manifest validation, batching, collation, loading failures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src import shapes
from src.config import SpectConfig
from src.dataset import SpeechDataset, collate, create_dataset, load_utterances, make_batches
from src.manifest import read_manifest
from src.text import clean_transcript, encode, load_labels, unknown_chars

LABELS_PATH = Path(__file__).resolve().parents[2] / "labels.json"
LABELS = load_labels(LABELS_PATH)
SPECT = SpectConfig()
SR = 16000


def write_wav(path: Path, seconds: float, sr: int = SR, freq: float = 440.0, seed: int = 0) -> Path:
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    noise = np.random.default_rng(seed).standard_normal(n)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * noise).astype(np.float32), sr)
    return path


def write_clip(folder: Path, name: str, seconds: float, text: str, sr: int = SR) -> tuple[Path, Path]:
    wav = write_wav(folder / f"{name}.wav", seconds, sr, freq=300.0 + 10 * len(name), seed=len(text))
    txt = folder / f"{name}.txt"
    txt.write_text(text, encoding="utf-8")
    return wav, txt


def write_csv(path: Path, rows: list[tuple[Path | str, Path | str]]) -> str:
    path.write_text("".join(f"{w},{t}\n" for w, t in rows), encoding="utf-8")
    return str(path)


def corpus(tmp_path: Path, seconds: list[float]) -> str:
    """Clips named c0, c1, ... of the given durations with short transcripts; returns the CSV path."""
    rows = [write_clip(tmp_path, f"c{i}", s, "HI THERE") for i, s in enumerate(seconds)]
    return write_csv(tmp_path / "m.csv", rows)


# --- text -------------------------------------------------------------------------------------------------


def test_text_helpers() -> None:
    assert LABELS[0] == "'" and LABELS[-1] == "_" and len(LABELS) == 29
    assert clean_transcript("  it\u2019s  a\ttest\n") == "IT'S A TEST"
    assert encode("IT'S", LABELS) == [9, 20, 0, 19]
    assert dict(unknown_chars("A@B@_@#", LABELS)) == {"@": 3, "_": 1, "#": 1}
    with pytest.raises(ValueError, match="'@'"):
        encode("A@", LABELS)


@pytest.mark.parametrize(
    ("content", "match"),
    [('["A", "_", "B"]', "last"), ('["A", "A", "_"]', "duplicate"), ('["AB", "_"]', "single"), ("[", "JSON")],
)
def test_load_labels_rejects_bad_files(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "labels.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_labels(path)


# --- manifests and validation -----------------------------------------------------------------------------


def test_load_utterances_reads_valid_rows_with_relative_paths(tmp_path: Path) -> None:
    write_clip(tmp_path, "a", 1.0, "it's a test")
    write_clip(tmp_path, "b", 0.5, "HI")
    manifest = write_csv(tmp_path / "m.csv", [("a.wav", "a.txt"), (tmp_path / "b.wav", tmp_path / "b.txt")])
    utts = load_utterances(manifest, LABELS, SPECT)
    assert [u.text for u in utts] == ["IT'S A TEST", "HI"]
    assert utts[0].label_ids == (9, 20, 0, 19, 27, 1, 27, 20, 5, 19, 20)
    assert [u.frames for u in utts] == [101, 51]
    assert utts[0].sample.wav_path == tmp_path / "a.wav"
    assert [u.sample.where for u in utts] == [f"{manifest}:1", f"{manifest}:2"]


def invalid_rows(tmp_path: Path) -> tuple[str, list[tuple[Path | str, Path | str]]]:
    """A manifest whose rows 2-5 are invalid in different ways; rows 1 and 6 are good."""
    good1 = write_clip(tmp_path, "good1", 1.0, "HELLO")
    good2 = write_clip(tmp_path, "good2", 0.5, "WORLD")
    empty = write_clip(tmp_path, "empty", 0.5, "  \n ")
    strange = write_clip(tmp_path, "strange", 0.5, "A@B@C@ #")
    short = write_clip(tmp_path, "short", 0.05, "A" * 30)
    rows = [good1, (tmp_path / "missing.wav", good1[1]), empty, strange, short, good2]
    return write_csv(tmp_path / "m.csv", rows), rows


def test_invalid_rows_raise_with_file_and_line(tmp_path: Path) -> None:
    manifest, _ = invalid_rows(tmp_path)
    with pytest.raises(ValueError) as info:
        load_utterances(manifest, LABELS, SPECT)
    message = str(info.value)
    assert f"{manifest}: 4 of 6 rows are invalid" in message
    assert f"{manifest}:2: audio file not found" in message
    assert f"{manifest}:3: empty transcript" in message
    assert f"{manifest}:4: unknown characters {{'@': 3, '#': 1}}" in message
    assert "unknown characters with counts: {'@': 3, '#': 1}" in message
    assert f"{manifest}:5: clip too short for its transcript" in message
    assert "30 labels" in message
    assert f"{manifest}:1:" not in message and f"{manifest}:6:" not in message


def test_skip_invalid_keeps_good_rows_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest, _ = invalid_rows(tmp_path)
    with caplog.at_level(logging.WARNING, logger="src.dataset"):
        utts = load_utterances(manifest, LABELS, SPECT, skip_invalid=True)
    assert [u.text for u in utts] == ["HELLO", "WORLD"]
    assert "4 of 6 rows are invalid" in caplog.text
    assert f"{manifest}:5: clip too short" in caplog.text


def test_all_invalid_rows_skipped_leaves_nothing(tmp_path: Path) -> None:
    wav, _ = write_clip(tmp_path, "a", 0.5, "")
    manifest = write_csv(tmp_path / "m.csv", [(wav, tmp_path / "a.txt")])
    with pytest.raises(ValueError, match="no usable clips"):
        load_utterances(manifest, LABELS, SPECT, skip_invalid=True)


def test_max_duration_skips_long_clips_without_cropping(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    manifest = corpus(tmp_path, [0.5, 2.0, 1.0, 1.9])
    with caplog.at_level(logging.WARNING, logger="src.dataset"):
        utts = load_utterances(manifest, LABELS, SPECT, max_duration=1.5)
    assert [u.sample.wav_path.name for u in utts] == ["c0.wav", "c2.wav"]
    assert [u.frames for u in utts] == [51, 101]
    assert "skipped 2 clips longer than 1.5 s" in caplog.text
    assert len(load_utterances(manifest, LABELS, SPECT, max_duration=0.0)) == 4


@pytest.mark.parametrize("row", ["a.wav", "a.wav,a.txt,extra", "a.wav,"])
def test_malformed_csv_row_names_file_and_line(tmp_path: Path, row: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"x.wav,x.txt\n\n{row}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"m\.csv:3: expected 'wav_path,txt_path'"):
        read_manifest(path)


def test_missing_and_empty_manifests(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no samples"):
        read_manifest(tmp_path / "empty.csv")


def test_json_and_json_lines_manifests_match_csv(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_clip(tmp_path / "data", "a", 0.5, "HI")
    write_clip(tmp_path / "data", "b", 0.5, "IT'S")
    samples = [{"wav_path": f"{n}.wav", "transcript_path": f"{n}.txt"} for n in "ab"]
    whole = tmp_path / "m.json"
    whole.write_text(json.dumps({"root_path": str(tmp_path / "data"), "samples": samples}, indent=2), encoding="utf-8")
    lines = tmp_path / "m.jsonl"
    lines.write_text(
        "".join(json.dumps({"root_path": "data", "samples": [s]}) + "\n" for s in samples), encoding="utf-8"
    )
    nemo = tmp_path / "nemo.json"
    nemo.write_text(
        "".join(
            json.dumps({"audio_filepath": f"data/{n}.wav", "text": t}) + "\n" for n, t in [("a", "hi"), ("b", "it's")]
        ),
        encoding="utf-8",
    )
    csv_path = write_csv(tmp_path / "m.csv", [("data/a.wav", "data/a.txt"), ("data/b.wav", "data/b.txt")])
    expected = [(u.sample.wav_path, u.text, u.label_ids) for u in load_utterances(csv_path, LABELS, SPECT)]
    for manifest in (whole, lines, nemo):
        got = [(u.sample.wav_path, u.text, u.label_ids) for u in load_utterances(str(manifest), LABELS, SPECT)]
        assert got == expected, manifest
    assert [s.where for s in read_manifest(lines)] == [f"{lines}:1 sample 0", f"{lines}:2 sample 0"]


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "text": "A"}\n{"audio_filepath": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"m\.jsonl:2: not valid JSON"):
        read_manifest(path)


def test_resampled_clip_counts_frames_at_16k(tmp_path: Path) -> None:
    wav, txt = write_clip(tmp_path, "low", 1.0, "HI", sr=8000)
    utts = load_utterances(write_csv(tmp_path / "m.csv", [(wav, txt)]), LABELS, SPECT)
    assert utts[0].frames == 101
    ds = SpeechDataset(utts, SPECT, batch_size=1, training=False, num_workers=1)
    assert ds.features(0, 0).shape == (161, 101)


# --- collate and batching -------------------------------------------------------------------------------


def test_collate_pads_to_bucket_and_keeps_apostrophe() -> None:
    a = np.full((3, 70), 1.0, np.float32)
    b = np.full((3, 100), 2.0, np.float32)
    features, lengths, labels, label_lengths = collate([(a, (9, 20, 0, 19)), (b, (8, 9))])
    t_pad = shapes.bucket_length(100)
    assert t_pad == 112
    assert features.shape == (2, 1, 3, 112) and features.dtype == np.float32
    assert labels.shape == (2, shapes.output_length(112)) and labels.dtype == np.int32
    np.testing.assert_array_equal(lengths, [70, 100])
    np.testing.assert_array_equal(label_lengths, [4, 2])
    np.testing.assert_array_equal(labels[0, :4], [9, 20, 0, 19])
    np.testing.assert_array_equal(labels[1, :2], [8, 9])
    assert np.all(features[0, 0, :, :70] == 1.0) and np.all(features[0, 0, :, 70:] == 0.0)
    assert np.all(features[1, 0, :, :100] == 2.0) and np.all(features[1, 0, :, 100:] == 0.0)


def test_collate_never_adds_rows() -> None:
    a = np.full((2, 10), 1.0, np.float32)
    b = np.full((2, 20), 2.0, np.float32)
    features, lengths, labels, label_lengths = collate([(a, (1, 0)), (b, (2,))])
    assert features.shape == (2, 1, 2, 64) and labels.shape[0] == 2
    np.testing.assert_array_equal(lengths, [10, 20])
    assert collate([(a, (1,))])[0].shape[0] == 1


def test_make_batches_groups_similar_lengths_in_order() -> None:
    frames = [50, 10, 40, 20, 30, 60, 5]
    assert make_batches(frames, 2, seed=1, epoch=0, in_order=True, drop_last=False) == [[6, 1], [3, 4], [2, 0], [5]]
    assert make_batches(frames, 2, seed=1, epoch=0, in_order=True, drop_last=True) == [[6, 1], [3, 4], [2, 0]]
    assert make_batches(frames, 3, seed=9, epoch=4, in_order=True, drop_last=False) == [[6, 1, 3], [4, 2, 0], [5]]


def test_make_batches_shuffle_is_deterministic_per_seed_and_epoch() -> None:
    frames = list(range(40, 0, -1))
    base = make_batches(frames, 2, seed=1, epoch=0, in_order=True, drop_last=False)
    runs = {
        (seed, epoch): make_batches(frames, 2, seed=seed, epoch=epoch, in_order=False, drop_last=False)
        for seed in (1, 2)
        for epoch in (0, 1)
    }
    for batches in runs.values():
        assert sorted(batches) == sorted(base)  # same groups, other order
    assert runs[(1, 0)] == make_batches(frames, 2, seed=1, epoch=0, in_order=False, drop_last=False)
    assert runs[(1, 0)] != runs[(1, 1)]
    assert runs[(1, 0)] != runs[(2, 0)]
    assert runs[(1, 0)] != base


# --- SpeechDataset --------------------------------------------------------------------------------------


def all_batches(ds: SpeechDataset, epoch: int = 0) -> list:
    return list(ds.iterate(epoch))


def test_eval_iterate_keeps_partial_last_batch_without_copies(tmp_path: Path) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5, 0.6, 0.7, 0.8, 0.9]), LABELS, SPECT)
    ds = SpeechDataset(utts, SPECT, batch_size=2, training=False, num_workers=1)
    got = all_batches(ds)
    assert [pos for pos, _ in got] == [0, 1, 2]
    assert [b.size for _, b in got] == [2, 2, 1]
    assert [b.features.shape[0] for _, b in got] == [2, 2, 1]  # the short last batch has one row, no copy
    assert [len(b.lengths) for _, b in got] == [2, 2, 1]
    assert got[-1][1].sources == [utts[4].sample.where]
    sources = [s for _, b in got for s in b.sources]
    assert sorted(sources) == sorted(u.sample.where for u in utts)
    frames = {u.sample.where: u.frames for u in utts}
    for _, b in got:
        assert list(b.lengths[: b.size]) == [frames[s] for s in b.sources]
        assert b.features.shape[3] == shapes.bucket_length(int(b.lengths.max()))
        assert b.labels.shape[1] == shapes.output_length(b.features.shape[3])
        assert b.texts == ["HI THERE"] * b.size
        assert np.all(b.features[:, :, :, b.lengths.max() :] == 0.0)


def test_create_dataset_train_mode_drops_last_and_shuffles(tmp_path: Path) -> None:
    manifest = corpus(tmp_path, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])
    ds = create_dataset(manifest, LABELS, SPECT, batch_size=2, training=True, seed=3, num_workers=1)
    assert ds.batches_per_epoch(0) == 3
    epoch0 = [b.sources for _, b in all_batches(ds, 0)]
    assert [b.size for _, b in all_batches(ds, 0)] == [2, 2, 2]
    assert epoch0 == [[f"{manifest}:{i}" for i in pair] for pair in ((1, 2), (3, 4), (5, 6))]  # SortaGrad
    orders = {tuple(tuple(s) for s in ds.epoch_batches(e)) for e in range(1, 6)}
    assert len(orders) > 1
    assert ds.epoch_batches(2) == ds.epoch_batches(2)


def test_iterate_from_start_position(tmp_path: Path) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5, 0.6, 0.7, 0.8]), LABELS, SPECT)
    ds = SpeechDataset(utts, SPECT, batch_size=1, training=False, num_workers=1)
    assert [pos for pos, _ in ds.iterate(0, start=2)] == [2, 3]


@pytest.mark.parametrize("world", [2, 3])
def test_training_shards_are_disjoint_and_equal(tmp_path: Path, world: int) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5 + 0.05 * i for i in range(7)]), LABELS, SPECT)
    shards = [
        SpeechDataset(utts, SPECT, batch_size=1, training=True, seed=5, rank=r, world=world).epoch_batches(1)
        for r in range(world)
    ]
    assert {len(s) for s in shards} == {7 // world}
    flat = [i for s in shards for batch in s for i in batch]
    assert len(flat) == len(set(flat)) == (7 // world) * world


def test_too_few_clips_for_a_training_batch_raise(tmp_path: Path) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5, 0.6]), LABELS, SPECT)
    with pytest.raises(ValueError, match="no full batch of 3"):
        SpeechDataset(utts, SPECT, batch_size=3, training=True)


def test_clip_corrupted_after_validation_is_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5, 0.6, 0.7, 0.8]), LABELS, SPECT)
    bad = tmp_path / "c1.wav"
    bad.write_bytes(b"this is not a wav file at all" * 10)
    ds = SpeechDataset(utts, SPECT, batch_size=2, training=False, num_workers=1)
    with caplog.at_level(logging.WARNING, logger="src.dataset"):
        got = all_batches(ds)
    assert [b.size for _, b in got] == [1, 2]
    sources = [s for _, b in got for s in b.sources]
    assert utts[1].sample.where not in sources and len(sources) == 3
    assert got[0][1].features.shape[0] == 1  # the failed clip's row is gone, not filled with a copy
    assert ds.failed == {str(bad): 1}
    assert f"{utts[1].sample.where}: skipped" in caplog.text


def test_batch_whose_clips_all_fail_is_left_out(tmp_path: Path) -> None:
    utts = load_utterances(corpus(tmp_path, [0.5, 0.6, 0.7]), LABELS, SPECT)
    (tmp_path / "c0.wav").unlink()
    ds = SpeechDataset(utts, SPECT, batch_size=1, training=False, num_workers=1)
    assert [pos for pos, _ in all_batches(ds)] == [1, 2]
    assert sum(ds.failed.values()) == 1
