"""src/augment.py: what each augmentation changes, and that nothing changes when it is off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from src.audio import AudioError
from src.augment import (
    Augmenter,
    NoiseInjector,
    change_speed,
    mask_spans,
    spec_augment,
    speed_perturb,
    volume_perturb,
)

SR = 16000


def sine(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * SR / len(x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.07, 1.1])
def test_change_speed_scales_length_and_frequency(factor: float) -> None:
    x = sine(1000.0)
    y = change_speed(x, factor)
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) / factor) <= 1
    assert peak_hz(y) == pytest.approx(1000.0 * factor, abs=2.0)


def test_speed_perturb_draws_from_range_and_is_deterministic() -> None:
    x = sine(500.0)
    y = speed_perturb(x, np.random.default_rng(3), low=1.1, high=1.1)
    assert abs(len(y) - len(x) / 1.1) <= 1
    assert peak_hz(y) == pytest.approx(550.0, abs=2.0)
    lengths = {len(speed_perturb(x, np.random.default_rng(s), 0.9, 1.1)) for s in range(20)}
    assert all(len(x) / 1.1 - 1 <= n <= len(x) / 0.9 + 1 for n in lengths)
    assert len(lengths) > 1
    a = speed_perturb(x, np.random.default_rng(7), 0.9, 1.1)
    b = speed_perturb(x, np.random.default_rng(7), 0.9, 1.1)
    np.testing.assert_array_equal(a, b)


def test_speed_one_is_an_identical_copy() -> None:
    x = sine(300.0)
    y = change_speed(x, 1.0)
    np.testing.assert_array_equal(x, y)
    assert y is not x
    with pytest.raises(ValueError, match="positive"):
        change_speed(x, 0.0)


@pytest.mark.parametrize("gain_db", [-6.0, 0.0, 3.0, 6.0])
def test_volume_perturb_scales_rms_by_gain(gain_db: float) -> None:
    x = sine(440.0)
    y = volume_perturb(x, np.random.default_rng(0), low_db=gain_db, high_db=gain_db)
    assert len(y) == len(x)
    assert 20 * np.log10(rms(y) / rms(x)) == pytest.approx(gain_db, abs=1e-4)


def test_volume_perturb_deterministic_and_in_range() -> None:
    x = sine(440.0)
    gains = [20 * np.log10(rms(volume_perturb(x, np.random.default_rng(s), -6.0, 6.0)) / rms(x)) for s in range(30)]
    assert all(-6.0 - 1e-4 <= g <= 6.0 + 1e-4 for g in gains)
    assert np.std(gains) > 1.0
    a = volume_perturb(x, np.random.default_rng(5), -6.0, 6.0)
    np.testing.assert_array_equal(a, volume_perturb(x, np.random.default_rng(5), -6.0, 6.0))
    with pytest.raises(ValueError, match="must not exceed"):
        volume_perturb(x, np.random.default_rng(0), 6.0, -6.0)


def zero_rows_cols(out: np.ndarray, spect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of fully zeroed rows and columns; every zero cell must lie in one of them."""
    zero = out == 0
    rows = np.flatnonzero(zero.all(axis=1))
    cols = np.flatnonzero(zero.all(axis=0))
    covered = np.zeros_like(zero)
    covered[rows, :] = True
    covered[:, cols] = True
    np.testing.assert_array_equal(zero, covered)
    np.testing.assert_array_equal(out[~zero], spect[~zero])
    return rows, cols


@pytest.mark.parametrize("seed", range(10))
def test_spec_augment_zeroes_exactly_the_drawn_bands(seed: int) -> None:
    rng_data = np.random.default_rng(100 + seed)
    spect = rng_data.uniform(0.5, 2.0, size=(161, 120)).astype(np.float32)  # no natural zeros
    length = 90
    out = spec_augment(spect, np.random.default_rng(seed), 2, 15, 2, 20, length=length)
    assert out is not spect and out.shape == spect.shape and out.dtype == spect.dtype
    rows, cols = zero_rows_cols(out, spect)
    # The same seed draws the same spans: frequency spans first, then time spans inside `length`.
    rng = np.random.default_rng(seed)
    want_rows = {r for s, w in mask_spans(rng, 2, 15, 161) for r in range(s, s + w)}
    want_cols = {c for s, w in mask_spans(rng, 2, 20, length) for c in range(s, s + w)}
    assert set(rows.tolist()) == want_rows
    assert set(cols.tolist()) == want_cols
    assert len(rows) <= 2 * 15 and len(cols) <= 2 * 20
    assert all(c < length for c in cols)  # so the padding is only touched by frequency masks


def test_spec_augment_widths_reach_the_maximum_and_input_is_untouched() -> None:
    spect = np.ones((20, 50), dtype=np.float32)
    widths = set()
    for seed in range(200):
        out = spec_augment(spect, np.random.default_rng(seed), 1, 4, 0, 0)
        widths.add(int((out == 0).all(axis=1).sum()))
    assert widths == {0, 1, 2, 3, 4}
    assert np.all(spect == 1)


@pytest.mark.parametrize("shape,length", [((4, 3), 3), ((3, 10), 2), ((1, 1), 1), ((5, 8), 0)])
def test_spec_augment_never_masks_everything(shape: tuple[int, int], length: int) -> None:
    spect = np.ones(shape, dtype=np.float32)
    for seed in range(50):
        out = spec_augment(spect, np.random.default_rng(seed), 3, 100, 3, 100, length=length)
        assert not (out == 0).all(axis=1).all(), "all frequency rows masked"
        if length:
            assert not (out[:, :length] == 0).all(axis=0).all(), "all valid frames masked"
        assert not (out[:, length:] == 0).all(axis=0).any(), "a padding frame was time-masked"


def test_spec_augment_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="freq_bins, frames"):
        spec_augment(np.ones(10), rng)
    with pytest.raises(ValueError, match="length 11"):
        spec_augment(np.ones((3, 10)), rng, length=11)


def write_noise(tmp_path: Path, name: str, seconds: float, seed: int, sr: int = SR) -> Path:
    noise = np.random.default_rng(seed).normal(0, 0.1, int(sr * seconds)).astype(np.float32)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noise, sr)  # the format's default subtype (PCM_16 wav/flac, Vorbis ogg)
    return path


@pytest.mark.parametrize("noise_seconds", [0.3, 2.0])  # shorter than the clip (looped) and longer (cropped)
def test_noise_raises_rms_at_the_expected_ratio(tmp_path: Path, noise_seconds: float) -> None:
    write_noise(tmp_path, "n.wav", noise_seconds, 1)
    level = 0.5
    inj = NoiseInjector(tmp_path, SR, prob=1.0, min_level=level, max_level=level)
    x = sine(300.0)
    y = inj(x, np.random.default_rng(0))
    assert y is not x and len(y) == len(x)
    added = y - x
    assert rms(added) / rms(x) == pytest.approx(level, rel=1e-4)
    # speech and noise are nearly uncorrelated, so powers add
    assert rms(y) == pytest.approx(rms(x) * np.sqrt(1 + level**2), rel=0.02)


def test_noise_level_range_and_probability(tmp_path: Path) -> None:
    write_noise(tmp_path, "a/one.flac", 1.5, 1)
    write_noise(tmp_path, "b/two.ogg", 0.5, 2)
    x = sine(300.0)
    never = NoiseInjector(tmp_path, SR, prob=0.0, min_level=0.2, max_level=0.4)
    assert len(never.paths) == 2
    assert all(never(x, np.random.default_rng(s)) is x for s in range(20))
    always = NoiseInjector(tmp_path, SR, prob=1.0, min_level=0.2, max_level=0.4)
    ratios = [rms(always(x, np.random.default_rng(s)) - x) / rms(x) for s in range(20)]
    assert all(0.2 - 1e-4 <= r <= 0.4 + 1e-4 for r in ratios)
    half = NoiseInjector(tmp_path, SR, prob=0.5, min_level=0.2, max_level=0.4)
    rng = np.random.default_rng(0)
    applied = sum(half(x, rng) is not x for _ in range(400))
    assert 150 < applied < 250
    a = always(x, np.random.default_rng(9))
    np.testing.assert_array_equal(a, always(x, np.random.default_rng(9)))
    np.testing.assert_array_equal(x, sine(300.0))  # input never modified


def test_noise_injector_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a directory"):
        NoiseInjector(tmp_path / "missing", SR, 0.4, 0.0, 0.5)
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="no audio files"):
        NoiseInjector(tmp_path, SR, 0.4, 0.0, 0.5)
    sf.write(tmp_path / "silent.wav", np.zeros(100, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="silent.wav"):
        NoiseInjector(tmp_path, SR, 0.4, 0.0, 0.5)
    with pytest.raises(ValueError, match="prob"):
        NoiseInjector(tmp_path, SR, 1.5, 0.0, 0.5)


def make_augmenter(**kw: object) -> Augmenter:
    args: dict = {
        "speed_volume_perturb": False,
        "spec_augment": False,
        "noise_dir": "",
        "noise_prob": 0.4,
        "noise_min": 0.0,
        "noise_max": 0.5,
        "sample_rate": SR,
    }
    args.update(kw)
    return Augmenter(**args)


def test_augmenter_all_off_returns_input_unchanged() -> None:
    aug = make_augmenter()
    assert not aug.enabled
    assert aug.describe() == "augmentation: off"
    x = sine(300.0)
    spect = np.ones((161, 40), dtype=np.float32)
    assert aug.audio(x, np.random.default_rng(0)) is x
    assert aug.spectrogram(spect, np.random.default_rng(0), 30) is spect


def test_augmenter_applies_what_is_on(tmp_path: Path) -> None:
    write_noise(tmp_path, "n.wav", 1.0, 4)
    x = sine(300.0)
    spect = np.ones((161, 40), dtype=np.float32)

    speed = make_augmenter(speed_volume_perturb=True, speed_range=(1.1, 1.1), gain_range_db=(6.0, 6.0))
    y = speed.audio(x, np.random.default_rng(0))
    assert abs(len(y) - len(x) / 1.1) <= 1
    assert 20 * np.log10(rms(y) / rms(x)) == pytest.approx(6.0, abs=0.05)
    assert speed.spectrogram(spect, np.random.default_rng(0), 30) is spect

    noisy = make_augmenter(noise_dir=str(tmp_path), noise_prob=1.0, noise_min=0.3, noise_max=0.3)
    y = noisy.audio(x, np.random.default_rng(0))
    assert len(y) == len(x) and rms(y - x) / rms(x) == pytest.approx(0.3, rel=1e-4)

    masks = make_augmenter(spec_augment=True, freq_masks=1, freq_width=5, time_masks=1, time_width=5)
    assert masks.audio(x, np.random.default_rng(0)) is x
    out = masks.spectrogram(spect, np.random.default_rng(1), 30)
    want = spec_augment(spect, np.random.default_rng(1), 1, 5, 1, 5, length=30)
    np.testing.assert_array_equal(out, want)
    assert "SpecAugment" in masks.describe() and masks.enabled


def test_augmenter_is_deterministic_with_a_seed(tmp_path: Path) -> None:
    write_noise(tmp_path, "n.wav", 1.0, 4)
    aug = make_augmenter(speed_volume_perturb=True, spec_augment=True, noise_dir=tmp_path, noise_prob=0.5)
    x = sine(300.0)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(42)
        runs.append([aug.audio(x, rng) for _ in range(5)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
