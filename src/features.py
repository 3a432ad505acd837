"""Feature extraction, pure numpy: centred STFT magnitude -> log1p -> per-utterance mean/std normalisation.

Every parameter that affects the features is explicit (window name, FFT size, hop, padding mode), so the
result does not drift with a library's defaults (librosa switched stft's pad_mode from reflect to constant).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import get_window

from src import shapes

PAD_MODE = "reflect"  # what deepspeech.pytorch's librosa used when the official checkpoints were trained


@lru_cache(maxsize=8)
def _window(name: str, length: int) -> np.ndarray:
    # fftbins=True gives the periodic window, as librosa/torch.stft use.
    return get_window(name, length, fftbins=True).astype(np.float64)


def stft_magnitude(audio: np.ndarray, n_fft: int, hop: int, window: str) -> np.ndarray:
    """Magnitude of a centred STFT.

    Args:
        audio: (samples,) float.
    Returns:
        (n_fft // 2 + 1, 1 + samples // hop) float32.
    """
    half = n_fft // 2
    audio = np.asarray(audio, dtype=np.float64)
    count = 1 + audio.shape[0] // hop
    if audio.shape[0] <= half:  # reflect padding needs more samples than the pad; zero-extend tiny clips
        audio = np.pad(audio, (0, half + 1 - audio.shape[0]))
    padded = np.pad(audio, half, mode=PAD_MODE)
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, n_fft), strides=(padded.strides[0] * hop, padded.strides[0])
    )
    spec = np.abs(np.fft.rfft(frames * _window(window, n_fft), axis=1))  # (frames, bins)
    return spec.T.astype(np.float32)


def normalize(spect: np.ndarray) -> np.ndarray:
    """Per-utterance standardisation over all bins and frames; silence (std 0) stays all zeros."""
    mean = spect.mean()
    std = spect.std()
    out = spect - mean
    if std > 0:
        out /= std
    return out.astype(np.float32, copy=False)


def spectrogram(
    audio: np.ndarray, sample_rate: int, window_size: float, window_stride: float, window: str
) -> np.ndarray:
    """The network's input features for one clip.

    Args:
        audio: (samples,) float32 mono at `sample_rate`.
    Returns:
        (161, 1 + samples // 160) float32 at the lab's defaults: log1p(|STFT|), normalised.
    """
    n_fft = shapes.n_fft(sample_rate, window_size)
    hop = shapes.hop_length(sample_rate, window_stride)
    return normalize(np.log1p(stft_magnitude(audio, n_fft, hop, window)))
