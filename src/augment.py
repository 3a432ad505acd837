"""Training-time data augmentation in pure numpy/scipy: speed, volume, additive noise and SpecAugment masks.

Every random function takes an explicit `np.random.Generator`, so a seeded generator reproduces a run exactly,
and every parameter that changes the result is an argument. Audio is (samples,) float32 mono; spectrograms are
(freq_bins, frames) normalised log-magnitudes, where 0 is the per-utterance mean.
The `Augmenter` mirrors deepspeech.pytorch's AugmentationConfig switches (speed_volume_perturb, spec_augment,
noise_dir / noise_prob / noise_min / noise_max): audio is perturbed first (speed, then volume, then noise) and
the masks are applied to the normalised spectrogram.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from src.audio import AudioError, load_audio
from src.config import AugmentationConfig

logger = logging.getLogger(__name__)

NOISE_SUFFIXES = (".wav", ".flac", ".ogg")
# Largest denominator of the rational speed factor; 1/100 steps are finer than any useful speed change and
# keep the polyphase filter short.
MAX_SPEED_DENOMINATOR = 100


def _check_range(name: str, low: float, high: float) -> None:
    if not low <= high:
        raise ValueError(f"{name}: low ({low}) must not exceed high ({high})")


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play `audio` `factor` times faster by resampling: pitch and tempo both scale by `factor`.

    The factor is approximated by a fraction p/q with q <= 100 and the signal is resampled by q/p
    (anti-aliased polyphase filter), so frequencies are multiplied by p/q when played at the original rate.

    Args:
        audio: (samples,) float array.
        factor: speed factor > 0; > 1 is faster (shorter), < 1 slower (longer).
    Returns:
        (ceil(samples * q / p),) float32, i.e. about samples / factor.
    """
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    ratio = Fraction(float(factor)).limit_denominator(MAX_SPEED_DENOMINATOR)
    if ratio == 1:
        return np.array(audio, dtype=np.float32)
    # resample_poly(up=q, down=p): n samples -> ceil(n * q / p)
    return resample_poly(audio, ratio.denominator, ratio.numerator).astype(np.float32)


def speed_perturb(audio: np.ndarray, rng: np.random.Generator, low: float = 0.9, high: float = 1.1) -> np.ndarray:
    """Change the speed by a factor drawn uniformly from [low, high] (see `change_speed`).

    Args:
        audio: (samples,) float array.
    Returns:
        (about samples / factor,) float32.
    """
    _check_range("speed_perturb", low, high)
    if low <= 0:
        raise ValueError(f"speed_perturb: factors must be positive, got low={low}")
    return change_speed(audio, rng.uniform(low, high))


def apply_gain_db(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale `audio` by `gain_db` decibels (amplitude x 10**(gain_db/20)); no clipping, so RMS scales exactly.

    Args:
        audio: (samples,) float array.
    Returns:
        (samples,) float32.
    """
    return (np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def volume_perturb(
    audio: np.ndarray, rng: np.random.Generator, low_db: float = -6.0, high_db: float = 6.0
) -> np.ndarray:
    """Apply a gain drawn uniformly from [low_db, high_db] dB (see `apply_gain_db`).

    Args:
        audio: (samples,) float array.
    Returns:
        (samples,) float32.
    """
    _check_range("volume_perturb", low_db, high_db)
    return apply_gain_db(audio, rng.uniform(low_db, high_db))


def mask_spans(rng: np.random.Generator, n_masks: int, max_width: int, size: int) -> list[tuple[int, int]]:
    """Draw `n_masks` (start, width) spans inside [0, size), each width uniform in [0, cap].

    cap = min(max_width, (size - 1) // n_masks), so even fully disjoint masks leave at least one index
    unmasked. Draw order per mask: width, then start (uniform in [0, size - width]).
    """
    if n_masks < 0 or max_width < 0:
        raise ValueError(f"mask count and width must be >= 0, got {n_masks} and {max_width}")
    if n_masks == 0 or size <= 1:
        return []
    cap = min(max_width, (size - 1) // n_masks)
    spans = []
    for _ in range(n_masks):
        width = int(rng.integers(0, cap + 1))
        start = int(rng.integers(0, size - width + 1))
        spans.append((start, width))
    return spans


def spec_augment(
    spect: np.ndarray,
    rng: np.random.Generator,
    freq_masks: int = 2,
    freq_width: int = 15,
    time_masks: int = 2,
    time_width: int = 20,
    length: int | None = None,
) -> np.ndarray:
    """SpecAugment frequency and time masking (no time warping) on a normalised spectrogram.

    Masked cells are set to 0, the utterance mean after normalisation. Frequency masks cover whole rows;
    time masks cover whole columns inside the first `length` frames only, so padding is never counted as
    masked speech. Widths are capped (see `mask_spans`) so some rows and valid frames always survive.
    Frequency spans are drawn before time spans.

    Args:
        spect: (freq_bins, frames) array.
        length: number of valid frames (<= frames); None means all frames are valid.
    Returns:
        (freq_bins, frames) masked copy, same dtype.
    """
    if spect.ndim != 2:
        raise ValueError(f"spec_augment expects a (freq_bins, frames) array, got shape {spect.shape}")
    n_freq, n_frames = spect.shape
    valid = n_frames if length is None else int(length)
    if not 0 <= valid <= n_frames:
        raise ValueError(f"spec_augment: length {length} is outside [0, {n_frames}]")
    out = spect.copy()
    for start, width in mask_spans(rng, freq_masks, freq_width, n_freq):
        out[start : start + width, :] = 0
    for start, width in mask_spans(rng, time_masks, time_width, valid):
        out[:, start : start + width] = 0
    return out


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


class NoiseInjector:
    """Add a random noise recording to speech at a random noise-to-speech RMS ratio (deepspeech.pytorch style).

    With probability `prob` a noise file is picked uniformly, a segment as long as the clip is cut from a
    random offset (looped when the noise is shorter), and it is scaled so that
    RMS(noise) = level * RMS(speech), level ~ U[min_level, max_level].
    """

    def __init__(self, noise_dir: str | Path, sample_rate: int, prob: float, min_level: float, max_level: float):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"noise prob must be in [0, 1], got {prob}")
        if min_level < 0:
            raise ValueError(f"noise levels must be >= 0, got min_level={min_level}")
        _check_range("noise levels", min_level, max_level)
        self.noise_dir = Path(noise_dir)
        self.sample_rate = sample_rate
        self.prob = prob
        self.min_level = min_level
        self.max_level = max_level
        self.paths, self.noises = self._load(self.noise_dir, sample_rate)
        logger.info("noise injection: %d files from %s, prob %.2f", len(self.paths), self.noise_dir, prob)

    @staticmethod
    def _load(noise_dir: Path, sample_rate: int) -> tuple[list[Path], list[np.ndarray]]:
        if not noise_dir.is_dir():
            raise FileNotFoundError(f"noise_dir is not a directory: {noise_dir}")
        paths = sorted(p for p in noise_dir.rglob("*") if p.is_file() and p.suffix.lower() in NOISE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"noise_dir {noise_dir} holds no audio files ({', '.join(NOISE_SUFFIXES)})")
        noises = []
        for path in paths:
            noise = load_audio(path, sample_rate)
            if _rms(noise) == 0.0:
                raise AudioError(f"noise file is silent (RMS 0), cannot scale it: {path}")
            noises.append(noise)
        return paths, noises

    def segment(self, noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) samples of `noise` from a random offset; a shorter noise wraps around (is looped)."""
        if len(noise) >= n:
            start = int(rng.integers(0, len(noise) - n + 1))
            return noise[start : start + n]
        start = int(rng.integers(0, len(noise)))
        return np.take(noise, np.arange(start, start + n), mode="wrap")

    def __call__(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Maybe add noise. The coin is always drawn first, so `prob` never shifts later draws.

        Args:
            audio: (samples,) float array; not modified.
        Returns:
            `audio` itself when no noise is added, else a new (samples,) float32 array.
        """
        if rng.random() >= self.prob:
            return audio
        noise = self.noises[int(rng.integers(0, len(self.noises)))]
        level = rng.uniform(self.min_level, self.max_level)
        segment = self.segment(noise, len(audio), rng)
        scale = level * _rms(audio) / _rms(segment) if _rms(segment) > 0 else 0.0
        return (np.asarray(audio, dtype=np.float32) + np.float32(scale) * segment).astype(np.float32)


class Augmenter:
    """The augmentations switched on by the config, applied in deepspeech.pytorch's order.

    `audio()` applies speed then volume perturbation (when speed_volume_perturb) and then noise (when
    noise_dir is set); `spectrogram()` applies SpecAugment masks (when spec_augment). With everything off
    both return their input object unchanged.
    """

    def __init__(
        self,
        speed_volume_perturb: bool,
        spec_augment: bool,
        noise_dir: str | Path | None,
        noise_prob: float,
        noise_min: float,
        noise_max: float,
        sample_rate: int,
        speed_range: tuple[float, float] = (0.9, 1.1),
        gain_range_db: tuple[float, float] = (-6.0, 6.0),
        freq_masks: int = 2,
        freq_width: int = 15,
        time_masks: int = 2,
        time_width: int = 20,
    ):
        _check_range("speed_range", *speed_range)
        _check_range("gain_range_db", *gain_range_db)
        self.speed_volume_perturb = bool(speed_volume_perturb)
        self.spec_augment = bool(spec_augment)
        self.speed_range = speed_range
        self.gain_range_db = gain_range_db
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        # An empty noise_dir string means "off", as in the lab's config.
        self.noise = NoiseInjector(noise_dir, sample_rate, noise_prob, noise_min, noise_max) if noise_dir else None

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.speed_volume_perturb or self.spec_augment or self.noise is not None

    def describe(self) -> str:
        """One line naming what is switched on, for the startup log."""
        parts = []
        if self.speed_volume_perturb:
            parts.append(f"speed {self.speed_range} + gain {self.gain_range_db} dB")
        if self.noise is not None:
            n = self.noise
            parts.append(f"noise p={n.prob} level [{n.min_level}, {n.max_level}] from {n.noise_dir}")
        if self.spec_augment:
            parts.append(
                f"SpecAugment {self.freq_masks}x{self.freq_width} freq, {self.time_masks}x{self.time_width} time"
            )
        return "augmentation: " + ("; ".join(parts) if parts else "off")

    def audio(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Perturb a waveform.

        Args:
            audio: (samples,) float array.
        Returns:
            (samples',) float32; samples' differs from samples only under speed perturbation.
        """
        if self.speed_volume_perturb:
            audio = speed_perturb(audio, rng, *self.speed_range)
            audio = volume_perturb(audio, rng, *self.gain_range_db)
        if self.noise is not None:
            audio = self.noise(audio, rng)
        return audio

    def spectrogram(self, spect: np.ndarray, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
        """Mask a normalised spectrogram.

        Args:
            spect: (freq_bins, frames) array.
            length: valid frames (time masks stay inside them); None = all.
        Returns:
            (freq_bins, frames) array.
        """
        if not self.spec_augment:
            return spect
        return spec_augment(
            spect, rng, self.freq_masks, self.freq_width, self.time_masks, self.time_width, length=length
        )


def build_augmenter(aug: AugmentationConfig, sample_rate: int) -> Augmenter:
    """The Augmenter a config section asks for (DataConfig.AugmentationConfig; sample rate from SpectConfig)."""
    return Augmenter(
        aug.speed_volume_perturb,
        aug.spec_augment,
        aug.noise_dir,
        aug.noise_prob,
        aug.noise_min,
        aug.noise_max,
        sample_rate,
    )
