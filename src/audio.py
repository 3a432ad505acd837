"""Audio loading: any file soundfile reads -> mono float32 at the requested sample rate (pure numpy/scipy)."""

from __future__ import annotations

import logging
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)


class AudioError(ValueError):
    """An audio file is missing, unreadable, empty or otherwise unusable; the message names the file."""


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of (samples, channels) audio into (samples,)."""
    if audio.ndim == 1:
        return audio
    return audio.mean(axis=1)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser window); returns the input unchanged when the rates match.

    Args:
        audio: (samples,) float array.
    Returns:
        (round(samples * target_sr / orig_sr),) float32.
    """
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    g = gcd(int(orig_sr), int(target_sr))
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def read_audio(path: str | Path, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Read raw samples as float32 (samples, channels) plus the file's sample rate; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise AudioError(f"cannot read audio file {path}: {err}") from err
    return data, int(sr)


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Load an audio file as mono float32 in [-1, 1] at `sample_rate`.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, mp3 with libsndfile >= 1.1).
        sample_rate: the rate to return; other rates are resampled.
    Returns:
        (samples,) float32.
    Raises:
        FileNotFoundError: the file does not exist.
        AudioError: the file is unreadable or holds no samples.
    """
    data, sr = read_audio(path)
    if data.shape[0] == 0:
        raise AudioError(f"audio file has no samples: {path}")
    audio = to_mono(data)
    if sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"audio file holds non-finite samples: {path}")
    return np.ascontiguousarray(audio, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the file header (no decoding); errors name the file."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AudioError(f"cannot read audio file {path}: {err}") from err
    return info.frames / float(info.samplerate)
