"""Cutting a mono stream into model-sized segments at quiet points (pure numpy): used by transcription, live
sessions and evaluation of clips longer than the model's limit.

Segments are cut at the quietest 20 ms of the last `search_seconds` before the length limit (no overlap, so no word
is counted twice) and resampled to the model's rate as a whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from src.audio import resample

QUIET_WINDOW_S = 0.02


@dataclass(frozen=True)
class Segment:
    """A piece of a file: `audio` (samples,) float32 mono at the model's rate, starting `start` s into the file."""

    start: float
    audio: np.ndarray


def quiet_cut(audio: np.ndarray, lo: int, hi: int, window: int) -> int:
    """Index in [lo, hi] at the centre of the lowest-energy `window`-sample stretch (the latest on ties).

    Args:
        audio: (samples,) mono.
    """
    lo, hi = max(0, lo), min(hi, len(audio))
    window = max(1, min(window, hi - lo))
    if hi - lo <= window:
        return hi
    power = np.concatenate([[0.0], np.cumsum(audio[lo:hi].astype(np.float64) ** 2)])
    energy = power[window:] - power[:-window]  # energy of audio[lo + i : lo + i + window]
    i = len(energy) - 1 - int(np.argmin(energy[::-1]))
    return lo + i + window // 2


class Segmenter:
    """Cuts a growing mono stream into segments of at most `max_seconds` at the model's rate, at quiet points.

    Blocks of any size can be pushed: the cuts depend only on the samples, so a file read in blocks and the same
    samples arriving over a live connection give the same segments.

    Args:
        sr: rate of the pushed samples.
        sample_rate: the model's rate (segments are resampled to it as a whole).
    """

    def __init__(self, sr: int, sample_rate: int, max_seconds: float, search_seconds: float = 3.0) -> None:
        self.sr, self.sample_rate = sr, sample_rate
        # n samples resample to ceil(n * sample_rate / sr): keep that within max_seconds at sample_rate
        self.max_native = max(2, math.floor(max_seconds * sample_rate + 1e-6) * sr // sample_rate)
        self.search = min(int(search_seconds * sr), self.max_native // 2)
        self.buffer, self.consumed, self.total = np.zeros(0, np.float32), 0, 0

    def push(self, block: np.ndarray) -> list[Segment]:
        """Add (samples,) float32 mono; returns the segments completed by it (usually none)."""
        self.total += len(block)
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        done = []
        while len(self.buffer) > self.max_native:
            window = max(1, int(QUIET_WINDOW_S * self.sr))
            cut = quiet_cut(self.buffer, self.max_native - self.search, self.max_native, window)
            done.append(Segment(self.consumed / self.sr, resample(self.buffer[:cut], self.sr, self.sample_rate)))
            self.consumed, self.buffer = self.consumed + cut, self.buffer[cut:]
        return done

    def tail(self) -> Segment | None:
        """The samples not yet cut off, as a segment (None when there are none); the buffer is kept."""
        if not len(self.buffer):
            return None
        return Segment(self.consumed / self.sr, resample(self.buffer, self.sr, self.sample_rate))
