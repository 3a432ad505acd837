"""Batches by duration (DataConfig.batch_seconds), length-grouped shuffling, and long clips cut at evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src import shapes
from src.config import SpectConfig
from src.dataset import SpeechDataset, batch_length, load_utterances, make_batches

SPECT = SpectConfig()
LABELS = [*"'ABCDEFGHIJKLMNOPQRSTUVWXYZ ", "_"]
# Clip lengths in frames (100 per second) spread over 0.3-17 s, unsorted, with repeats.
FRAMES = [int(f) for f in np.random.default_rng(0).integers(30, 1700, 157)] + [1700, 1700, 45, 45]


def old_make_batches(frames, batch_size, seed, epoch, in_order, drop_last):
    """make_batches as it was before the cap existed: the default must still give exactly this."""
    order = sorted(range(len(frames)), key=lambda i: (frames[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if not in_order:
        np.random.default_rng((seed, epoch)).shuffle(batches)
    return batches


def padded_frames(batch: list[int], frames: list[int]) -> int:
    return len(batch) * batch_length(batch, frames)


@pytest.mark.parametrize(("in_order", "drop_last", "epoch"), [(True, False, 0), (False, True, 3), (False, False, 1)])
def test_default_is_the_fixed_batch_size_of_before(in_order: bool, drop_last: bool, epoch: int) -> None:
    got = make_batches(FRAMES, 20, seed=7, epoch=epoch, in_order=in_order, drop_last=drop_last)
    assert got == old_make_batches(FRAMES, 20, 7, epoch, in_order, drop_last)


@pytest.mark.parametrize("cap_seconds", [30.0, 120.0, 300.0])
@pytest.mark.parametrize("in_order", [True, False])
def test_cap_is_respected_and_every_clip_is_in_one_batch(cap_seconds: float, in_order: bool) -> None:
    cap = int(cap_seconds * 100)
    batches = make_batches(FRAMES, 20, seed=1, epoch=2, in_order=in_order, drop_last=True, max_frames=cap)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(FRAMES)))  # every clip exactly once, none dropped
    for b in batches:
        assert padded_frames(b, FRAMES) <= cap or len(b) == 1, (b, padded_frames(b, FRAMES))
    # In order, each batch is as full as the cap allows: the next clip would not have fitted.
    for b, after in zip(batches, batches[1:]) if in_order else []:
        assert (len(b) + 1) * shapes.bucket_length(FRAMES[after[0]]) > cap


def test_cap_gives_floor_of_cap_over_bucket_clips() -> None:
    frames = [500] * 50  # one bucket: bucket_length(500) = 512 frames
    batches = make_batches(frames, 20, seed=1, epoch=0, in_order=True, drop_last=True, max_frames=3000)
    assert shapes.bucket_length(500) == 512
    assert [len(b) for b in batches] == [5] * 10  # floor(3000 / 512) = 5 clips
    # A clip longer than the cap gets a batch of its own.
    alone = make_batches([100, 5000, 120], 20, seed=1, epoch=0, in_order=True, drop_last=False, max_frames=1000)
    assert alone == [[0, 2], [1]]


def test_capped_batches_are_deterministic_per_seed_and_epoch() -> None:
    def run(seed: int, epoch: int, group: bool) -> list:
        return make_batches(FRAMES, 20, seed, epoch, False, True, max_frames=20000, group_by_length=group)

    for group in (False, True):
        assert run(1, 3, group) == run(1, 3, group)
        assert run(1, 3, group) != run(1, 4, group)
        assert run(1, 3, group) != run(2, 3, group)
        assert sorted(run(1, 3, group)) == sorted(run(5, 0, group))  # same batches, other order


@pytest.mark.parametrize("cap", [0, 20000])
def test_group_by_length_runs_each_length_once_in_shuffled_order(cap: int) -> None:
    plain = make_batches(FRAMES, 4, 1, 5, False, True, max_frames=cap)
    grouped = make_batches(FRAMES, 4, 1, 5, False, True, max_frames=cap, group_by_length=True)
    assert sorted(grouped) == sorted(plain)
    lengths = [batch_length(b, FRAMES) for b in grouped]
    runs = [n for i, n in enumerate(lengths) if i == 0 or n != lengths[i - 1]]
    assert len(runs) == len(set(lengths))  # each padded length appears as one consecutive run
    assert runs != sorted(runs) and runs != sorted(runs, reverse=True)  # the group order is shuffled
    plain_lengths = [batch_length(b, FRAMES) for b in plain]
    assert len([n for i, n in enumerate(plain_lengths) if i == 0 or n != plain_lengths[i - 1]]) > len(runs)
    other = make_batches(FRAMES, 4, 1, 6, False, True, max_frames=cap, group_by_length=True)
    assert other != grouped and sorted(other) == sorted(grouped)


def fake_utterances(tmp_path: Path, frames: list[int]) -> list:
    """Utterances with given frame counts (never read: epoch_batches only looks at frames)."""
    from src.dataset import Utterance
    from src.manifest import Sample

    return [
        Utterance(Sample(tmp_path / f"{i}.wav", None, "A", f"m.csv:{i + 1}"), "A", (1,), n)
        for i, n in enumerate(frames)
    ]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_capped_training_shards_are_equal_and_disjoint(tmp_path: Path, world: int) -> None:
    utts = fake_utterances(tmp_path, FRAMES)
    shards = [
        SpeechDataset(
            utts, SPECT, 20, True, seed=5, rank=r, world=world, batch_seconds=60.0, group_by_length=True
        ).epoch_batches(2)
        for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) > 0
    flat = [i for s in shards for b in s for i in b]
    assert len(flat) == len(set(flat))
    for s in shards:
        assert all(padded_frames(b, FRAMES) <= 6000 or len(b) == 1 for b in s)


def test_capped_dataset_with_sortagrad_starts_in_order(tmp_path: Path) -> None:
    ds = SpeechDataset(fake_utterances(tmp_path, FRAMES), SPECT, 20, True, seed=5, batch_seconds=60.0)
    lengths = [batch_length(b, FRAMES) for b in ds.epoch_batches(0)]
    assert lengths == sorted(lengths)
    assert sorted(i for b in ds.epoch_batches(0) for i in b) == list(range(len(FRAMES)))


def test_segment_seconds_is_refused_for_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="evaluation only"):
        SpeechDataset(fake_utterances(tmp_path, [100, 200]), SPECT, 1, True, segment_seconds=5.0)


def write_tone_clip(folder: Path, name: str, seconds: float, text: str) -> tuple[Path, Path]:
    """A tone with a silent gap every 2.5 s (quiet points to cut at)."""
    t = np.arange(int(seconds * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 330 * t) * (np.mod(t, 2.5) > 0.3)
    sf.write(str(folder / f"{name}.wav"), audio.astype(np.float32), 16000)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder / f"{name}.wav", folder / f"{name}.txt"


def test_eval_cuts_clips_longer_than_segment_seconds_into_one_row_batches(tmp_path: Path) -> None:
    rows = [write_tone_clip(tmp_path, f"c{i}", s, "HI THERE") for i, s in enumerate([1.0, 12.0, 1.5, 2.0])]
    (tmp_path / "m.csv").write_text("".join(f"{w},{t}\n" for w, t in rows), encoding="utf-8")
    utts = load_utterances(str(tmp_path / "m.csv"), LABELS, SPECT)
    ds = SpeechDataset(utts, SPECT, 20, False, num_workers=1, segment_seconds=5.0)
    assert ds.epoch_batches(0) == [[0, 2, 3], [1]]  # the long clip alone, last
    got = list(ds.iterate(0))
    assert [pos for pos, _ in got] == [0, 1, 1, 1]
    assert got[0][1].features.shape[0] == 3 and got[0][1].part == (0, 1)
    segments = [b for _, b in got[1:]]
    assert [b.part for b in segments] == [(0, 3), (1, 3), (2, 3)]
    assert all(b.features.shape[0] == 1 and b.sources == [utts[1].sample.where] for b in segments)
    assert all(b.lengths[0] <= 501 for b in segments)  # at most 5 s each
    assert sum(int(b.lengths[0]) for b in segments) == pytest.approx(utts[1].frames, abs=3)
    unlimited = SpeechDataset(utts, SPECT, 20, False, num_workers=1)
    assert unlimited.epoch_batches(0) == [[0, 2, 3, 1]]


def test_batch_seconds_flag_and_config_checks(tmp_path: Path) -> None:
    import argparse

    from src import config as C
    from src.cli import add_common_args, build_eval_config

    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,a.txt\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    parser.add_argument("--test_manifest")
    add_common_args(parser)
    cfg = build_eval_config(parser.parse_args(["--test_manifest", str(manifest), "--batch_seconds", "90"]), "x.ckpt")
    assert cfg.DataConfig.batch_seconds == 90.0 and cfg.DataConfig.max_eval_seconds == 60.0
    train = C.TrainConfig()
    assert train.DataConfig.batch_seconds == 0.0 and train.DataConfig.batch_size == 20  # the lab's default
    assert train.DataConfig.group_by_length is True
    train.DataConfig.batch_seconds = -1.0
    with pytest.raises(ValueError, match="batch_seconds"):
        C.validate_train(train)
    for bad in ("DataConfig.max_eval_seconds=0.5", "DataConfig.batch_seconds=-2"):
        args = parser.parse_args(["--test_manifest", str(manifest), "--set", bad])
        with pytest.raises(ValueError, match=bad.split(".")[1].split("=")[0]):
            build_eval_config(args, "x.ckpt")


def test_eval_guard_keeps_a_long_clip_from_padding_a_whole_batch(tmp_path: Path) -> None:
    frames = [1501] * 19 + [6001]  # nineteen 15 s clips and one 60 s clip, at batch 20
    utts = fake_utterances(tmp_path, frames)
    plain = SpeechDataset(utts, SPECT, 20, False).epoch_batches(0)
    assert [len(b) for b in plain] == [20] and padded_frames(plain[0], frames) == 20 * 6144  # the blow-up
    guarded = SpeechDataset(utts, SPECT, 20, False, max_batch_seconds=320.0).epoch_batches(0)
    assert sorted(i for b in guarded for i in b) == list(range(20))
    assert all(padded_frames(b, frames) <= 32000 and len(b) <= 20 for b in guarded)
    assert guarded == [list(range(19)), [19]]  # 19 x 1536 frames fit; the 60 s clip would make it 20 x 6144
    five = SpeechDataset(fake_utterances(tmp_path, [6001] * 7), SPECT, 20, False, max_batch_seconds=320.0)
    assert [len(b) for b in five.epoch_batches(0)] == [5, 2]  # floor(32000 / 6144) = 5 of the long clips
    # Where the guard never binds, the batches are exactly the fixed-size ones.
    short_frames = [min(n, 700) for n in FRAMES]
    short = fake_utterances(tmp_path, short_frames)
    assert SpeechDataset(short, SPECT, 20, False, max_batch_seconds=320.0).epoch_batches(0) == SpeechDataset(
        short, SPECT, 20, False
    ).epoch_batches(0)
    with pytest.raises(ValueError, match="evaluation only"):
        SpeechDataset(utts, SPECT, 1, True, max_batch_seconds=100.0)


def test_create_eval_dataset_reads_the_eval_config(tmp_path: Path) -> None:
    from src.config import EvalDataConfig
    from src.dataset import create_eval_dataset

    rows = [write_tone_clip(tmp_path, f"c{i}", s, "HI") for i, s in enumerate([1.0, 8.0, 1.2])]
    (tmp_path / "m.csv").write_text("".join(f"{w},{t}\n" for w, t in rows), encoding="utf-8")
    d = EvalDataConfig(test_manifest=str(tmp_path / "m.csv"), batch_size=20)
    assert (d.max_eval_seconds, d.max_batch_seconds, d.batch_seconds) == (60.0, 320.0, 0.0)
    d.max_eval_seconds, d.max_batch_seconds = 5.0, 2.0
    ds = create_eval_dataset(d, LABELS, num_workers=1)
    assert ds.epoch_batches(0) == [[0], [2], [1]]  # 2 x 1.28 s > 2 s: one per batch; the 8 s clip is cut
    assert ds.is_long(1) and not ds.is_long(0)


def test_allocation_failure_in_eval_is_one_line_naming_the_clip(tmp_path: Path) -> None:
    from deepspeech_pytorch.decoder import Decoder
    from src.evaluation import EvalMemoryError, evaluate

    rows = [write_tone_clip(tmp_path, f"c{i}", s, "HI") for i, s in enumerate([1.0, 1.2])]
    (tmp_path / "m.csv").write_text("".join(f"{w},{t}\n" for w, t in rows), encoding="utf-8")
    ds = SpeechDataset(load_utterances(str(tmp_path / "m.csv"), LABELS, SPECT), SPECT, 20, False, num_workers=1)

    def out_of_memory(features, lengths):
        raise RuntimeError("std::bad_alloc")

    with pytest.raises(EvalMemoryError) as info:
        evaluate(out_of_memory, ds, lambda p, n: [""] * len(n), Decoder(LABELS))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'm.csv'}:1: out of memory")
    assert "2 clip(s) x 128 padded frames" in message and "max_batch_seconds" in message

    def broken(features, lengths):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):  # other failures are not disguised
        evaluate(broken, ds, lambda p, n: [""] * len(n), Decoder(LABELS))
