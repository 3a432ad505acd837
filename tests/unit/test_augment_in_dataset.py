"""Augmentation and SortaGrad as wired into src/dataset.py SpeechDataset (training features and batch order)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src.audio import load_audio
from src.augment import Augmenter
from src.config import SpectConfig
from src.dataset import SpeechDataset, load_utterances
from src.features import spectrogram
from src.text import load_labels

LABELS = load_labels(Path(__file__).resolve().parents[2] / "labels.json")
SPECT = SpectConfig()
SR = 16000


def write_corpus(folder: Path, seconds: list[float]) -> str:
    """Clips c0, c1, ... (two tones plus a little noise) with the transcript "SEVEN"; returns the CSV path."""
    rows = []
    for i, duration in enumerate(seconds):
        t = np.arange(int(round(duration * SR))) / SR
        rng = np.random.default_rng(i)
        audio = 0.3 * np.sin(2 * np.pi * (200 + 37 * i) * t) + 0.1 * np.sin(2 * np.pi * 1300 * t)
        sf.write(str(folder / f"c{i}.wav"), (audio + 0.01 * rng.standard_normal(len(t))).astype(np.float32), SR)
        (folder / f"c{i}.txt").write_text("SEVEN", encoding="utf-8")
        rows.append(f"c{i}.wav,c{i}.txt\n")
    manifest = folder / "train.csv"
    manifest.write_text("".join(rows), encoding="utf-8")
    return str(manifest)


def write_noise(folder: Path) -> Path:
    noise_dir = folder / "noise"
    noise_dir.mkdir()
    sf.write(str(noise_dir / "white.wav"), 0.2 * np.random.default_rng(9).standard_normal(SR).astype(np.float32), SR)
    return noise_dir


def make_augmenter(speed_volume: bool, spec: bool, noise_dir: Path | str) -> Augmenter:
    # noise_prob 1: every clip gets noise, so a test never depends on the coin.
    return Augmenter(speed_volume, spec, noise_dir, 1.0, 0.1, 0.3, SR)


def training_set(manifest: str, augmenter: Augmenter | None, seed: int = 1, sortagrad: bool = True) -> SpeechDataset:
    utts = load_utterances(manifest, LABELS, SPECT)
    return SpeechDataset(utts, SPECT, 2, True, augmenter=augmenter, seed=seed, sortagrad=sortagrad, num_workers=1)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


@pytest.fixture()
def corpus(tmp_path: Path) -> tuple[str, Path]:
    return write_corpus(tmp_path, [0.6, 0.8, 1.0, 1.2]), write_noise(tmp_path)


def test_augmented_features_differ_from_plain_and_are_repeatable(corpus: tuple[str, Path]) -> None:
    manifest, noise_dir = corpus
    plain = training_set(manifest, None)
    augmented = training_set(manifest, make_augmenter(True, True, noise_dir))
    again = training_set(manifest, make_augmenter(True, True, noise_dir))
    other_seed = training_set(manifest, make_augmenter(True, True, noise_dir), seed=2)
    for index in range(len(plain.utts)):
        base = plain.features(index, 0)
        epoch0 = augmented.features(index, 0)
        assert not same(epoch0, base)
        assert same(epoch0, augmented.features(index, 0))  # same seed, epoch and clip: same features
        assert same(epoch0, again.features(index, 0))  # ... even from a freshly built dataset
        assert not same(epoch0, augmented.features(index, 1))  # a new epoch draws new perturbations
        assert not same(epoch0, other_seed.features(index, 0))
        assert np.isfinite(epoch0).all() and epoch0.shape[0] == base.shape[0]


@pytest.mark.parametrize("switch", ["speed_volume", "spec", "noise"])
def test_each_augmentation_alone_reaches_the_features(corpus: tuple[str, Path], switch: str) -> None:
    manifest, noise_dir = corpus
    augmenter = make_augmenter(switch == "speed_volume", switch == "spec", noise_dir if switch == "noise" else "")
    assert augmenter.enabled
    plain, augmented = training_set(manifest, None), training_set(manifest, augmenter)
    assert not same(augmented.features(2, 0), plain.features(2, 0))
    # Only speed perturbation changes the clip's length.
    assert (augmented.features(2, 0).shape != plain.features(2, 0).shape) == (switch == "speed_volume")


def test_everything_off_gives_the_plain_spectrogram(corpus: tuple[str, Path]) -> None:
    manifest, _ = corpus
    off = training_set(manifest, make_augmenter(False, False, ""))
    assert off.augmenter is None
    for index, utt in enumerate(off.utts):
        audio = load_audio(utt.sample.wav_path, SPECT.sample_rate)
        expected = spectrogram(audio, SPECT.sample_rate, SPECT.window_size, SPECT.window_stride, SPECT.window)
        for epoch in (0, 1):
            assert same(off.features(index, epoch), expected)


def test_augmented_batches_carry_the_augmented_features(corpus: tuple[str, Path]) -> None:
    manifest, noise_dir = corpus
    augmented = training_set(manifest, make_augmenter(True, True, noise_dir), sortagrad=True)
    _, batch = next(iter(augmented.iterate(0)))
    first = augmented.epoch_batches(0)[0]
    for row, index in enumerate(first):
        spect = augmented.features(index, 0)
        assert batch.lengths[row] == spect.shape[1]
        assert np.array_equal(batch.features[row, 0, :, : spect.shape[1]], spect)


def durations_in_order(dataset: SpeechDataset, epoch: int) -> list[int]:
    return [dataset.utts[i].frames for batch in dataset.epoch_batches(epoch) for i in batch]


def test_sortagrad_first_epoch_by_duration_then_shuffled(tmp_path: Path) -> None:
    seconds = [1.3, 0.4, 0.9, 0.7, 1.5, 0.5, 1.1, 0.6, 1.0, 0.8, 1.4, 1.2]  # manifest not in duration order
    manifest = write_corpus(tmp_path, seconds)
    sorta = training_set(manifest, None, sortagrad=True)
    epoch0, epoch1 = durations_in_order(sorta, 0), durations_in_order(sorta, 1)
    assert epoch0 == sorted(epoch0) and len(epoch0) == len(seconds)
    assert epoch1 != sorted(epoch1) and sorted(epoch1) == epoch0  # same clips, shuffled batch order
    assert sorta.epoch_batches(1) == sorta.epoch_batches(1)  # the shuffle is seeded
    # The iterator really yields epoch 0 shortest first.
    longest = [int(batch.lengths.max()) for _, batch in sorta.iterate(0)]
    assert longest == sorted(longest)
    # Without SortaGrad even the first epoch is shuffled.
    shuffled = durations_in_order(training_set(manifest, None, sortagrad=False), 0)
    assert shuffled != sorted(shuffled)
