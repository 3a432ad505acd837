"""src/features.py and src/shapes.py: spectrogram of synthetic signals, and the shape arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src import shapes
from src.features import normalize, spectrogram, stft_magnitude

SR = 16000
HOP = 160


def sine(freq: float, samples: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(samples) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def spect(audio: np.ndarray, window: str = "hamming") -> np.ndarray:
    return spectrogram(audio, SR, 0.02, 0.01, window)


# --- features ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [16000, 16001, 16159, 8320, 480])
def test_sine_shape_finite_and_normalised(samples: int) -> None:
    s = spect(sine(1000.0, samples))
    assert s.shape == (161, 1 + samples // HOP)
    assert s.dtype == np.float32
    assert np.all(np.isfinite(s))
    assert abs(float(s.mean())) < 1e-4
    assert float(s.std()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("freq", [500.0, 1000.0, 2450.0, 6000.0])
def test_sine_peak_bin_is_freq_over_50hz(freq: float) -> None:
    s = spect(sine(freq, SR))
    # 320-point FFT at 16 kHz: 50 Hz per bin.
    assert int(np.argmax(s.mean(axis=1))) == int(freq / 50)
    assert np.all(np.argmax(s[:, 2:-2], axis=0) == int(freq / 50))


def test_silence_is_all_zeros() -> None:
    s = spect(np.zeros(SR, np.float32))
    assert s.shape == (161, 101)
    assert not np.any(np.isnan(s))
    assert np.all(s == 0.0)


def test_normalize_constant_input_gives_zeros_and_keeps_dtype() -> None:
    out = normalize(np.full((3, 4), 2.5, np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.zeros((3, 4), np.float32))


def test_normalize_exact_values() -> None:
    out = normalize(np.array([[1.0, 3.0]], np.float32))
    np.testing.assert_allclose(out, [[-1.0, 1.0]])


def test_window_is_passed_through() -> None:
    x = sine(1000.0, 4000) + 0.1 * np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    hamming = spect(x, "hamming")
    hann = spect(x, "hann")
    assert hamming.shape == hann.shape
    assert not np.allclose(hamming, hann)
    np.testing.assert_array_equal(hamming, spect(x, "hamming"))


def test_stft_magnitude_of_ones_matches_window_sum() -> None:
    # A constant signal: every frame's DC bin is the sum of the (periodic) window.
    from scipy.signal import get_window

    mag = stft_magnitude(np.ones(1600, np.float32), 320, 160, "hann")
    assert mag.shape == (161, 11)
    np.testing.assert_allclose(mag[0], get_window("hann", 320, fftbins=True).sum(), rtol=1e-5)


@pytest.mark.parametrize("window", ["hanning", "not_a_window"])
def test_invalid_window_name_raises(window: str) -> None:
    with pytest.raises(ValueError):
        spect(sine(1000.0, 1600), window)


@pytest.mark.parametrize("samples", [1, 50, 159, 160])
def test_tiny_clips_work(samples: int) -> None:
    s = spect(sine(440.0, samples))
    assert s.shape[0] == 161
    assert s.shape[1] >= 1
    assert np.all(np.isfinite(s))


@pytest.mark.parametrize("samples", [1, 50, 159])
def test_tiny_clips_follow_the_frame_formula(samples: int) -> None:
    assert spect(sine(440.0, samples)).shape[1] == shapes.num_frames(samples, HOP)


# --- shapes -----------------------------------------------------------------------------------------------


def test_lab_constants() -> None:
    assert shapes.n_fft(SR, 0.02) == 320
    assert shapes.hop_length(SR, 0.01) == 160
    assert shapes.freq_bins(SR, 0.02) == 161
    assert shapes.conv_out_freq(161) == 41
    assert shapes.rnn_input_size(SR, 0.02) == 1312
    assert shapes.num_frames(16000, 160) == 101


def test_output_length_is_ceil_half_and_the_conv_formula_twice() -> None:
    for t in range(1, 3001):
        once = (t + 2 * 5 - 11) // 2 + 1
        twice = (once + 2 * 5 - 11) // 1 + 1
        assert shapes.output_length(t) == math.ceil(t / 2) == twice, t


def test_bucket_length_properties() -> None:
    previous = 0
    buckets = set()
    for frames in range(1, 3501):
        b = shapes.bucket_length(frames)
        assert b >= frames, frames
        assert b % 2 == 0, frames
        assert b >= previous, frames
        if frames > 64:
            assert b <= 1.25 * frames, frames
        previous = b
        buckets.add(b)
    assert shapes.bucket_length(1) == 64
    assert shapes.bucket_length(64) == 64
    assert len(buckets) < 40


@pytest.mark.parametrize(("frames", "expected"), [(65, 80), (80, 80), (81, 96), (128, 128), (129, 160), (1250, 1280)])
def test_bucket_length_exact_values(frames: int, expected: int) -> None:
    assert shapes.bucket_length(frames) == expected


# --- agreement with librosa (the library the official checkpoints' features came from) --------------------------


@pytest.mark.parametrize("window", ["hamming", "hann"])
@pytest.mark.parametrize("samples", [16000, 16037, 24159, 4000, 700])
def test_features_equal_librosa_stft(window: str, samples: int) -> None:
    """log1p |STFT| -> normalise equals the same pipeline over librosa.stft (reflect-padded, centred frames).

    librosa >= 0.10 pads the head and tail slices separately; when the clip length is a multiple of the hop its
    tail slice is exactly n_fft // 2 long, so np.pad's reflect wraps around and the last frame differs from
    padding the whole clip (what librosa <= 0.9, used for the official checkpoints, and we do). Padding once here
    and calling librosa with center=False gives librosa's frames for every length.
    """
    librosa = pytest.importorskip("librosa")
    from scipy.signal import get_window

    audio = np.random.default_rng(samples).standard_normal(samples).astype(np.float32) * 0.1
    padded = np.pad(audio.astype(np.float64), 160, mode="reflect")
    magnitude = np.abs(
        librosa.stft(padded, n_fft=320, hop_length=HOP, win_length=320, window=get_window(window, 320), center=False)
    )
    expected = normalize(np.log1p(magnitude).astype(np.float32))
    ours = spect(audio, window)
    assert ours.shape == expected.shape == (161, 1 + samples // HOP)
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    if samples % HOP:  # librosa's own centring gives the same frames when its tail slice is long enough
        centred = np.abs(
            librosa.stft(audio.astype(np.float64), n_fft=320, hop_length=HOP, window=window, pad_mode="reflect")
        )
        np.testing.assert_allclose(ours, normalize(np.log1p(centred).astype(np.float32)), atol=1e-5, rtol=0)


def test_seconds_and_frames_round_trip() -> None:
    assert shapes.frames_for_seconds(15.0, SR, 0.01) == 1501  # export's default static input
    assert shapes.frames_for_seconds(2.3, SR, 0.01) == 1 + 36800 // HOP  # rounded, not truncated, samples
    assert shapes.seconds_for_frames(1501, SR, 0.01) == 15.0
    for frames in (64, 100, 1501):
        seconds = shapes.seconds_for_frames(frames, SR, 0.01)
        assert shapes.frames_for_seconds(seconds, SR, 0.01) == frames
    assert shapes.frames_to_seconds(250, 0.01) == pytest.approx(2.5)
    assert shapes.output_frame_seconds(0.01) == pytest.approx(0.02)
    assert shapes.frames_for_seconds(1.0, 8000, 0.01) == 101  # 8 kHz: hop 80
