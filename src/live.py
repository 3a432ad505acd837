"""Live transcription of a growing stream of 16 kHz PCM: re-decode a growing window, commit at quiet cuts.

The samples of the session so far are cut by the same `Segmenter` that cuts files (transcription.py): once the
open window passes `segment_seconds`, its head up to the quietest 20 ms of the last 3 s is decoded once and frozen.
Every partial re-decodes only the open window (at most `segment_seconds`, so a partial costs what one segment
costs however long the session), and the final transcript is the frozen segments plus the last window: exactly
what transcribe.py gives for a file holding the same samples.
"""

from __future__ import annotations

import numpy as np

from src.transcription import Segmenter, Transcriber, Transcript, Word, assemble

STREAM_RATE = 16000  # the rate of the PCM a live client sends


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian int16 PCM bytes (even length) -> (samples,) float32 in [-1, 1), as libsndfile reads PCM_16."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class LiveTranscript:
    """One live session's state. `push` is cheap (event loop); `decode` runs the model (model thread)."""

    def __init__(self, transcriber: Transcriber, rate: int = STREAM_RATE, name: str = "stream") -> None:
        self.transcriber, self.rate, self.name = transcriber, rate, name
        self.cutter = Segmenter(rate, transcriber.spect.sample_rate, transcriber.segment_seconds)
        self.frozen: list[tuple[list[Word], dict]] = []
        self.todo = []  # segments cut off but not decoded yet

    @property
    def seconds(self) -> float:
        return self.cutter.total / self.rate

    def push(self, samples: np.ndarray) -> None:
        """Append (samples,) float32 mono at `rate`."""
        self.todo += self.cutter.push(samples)

    def decode(self) -> Transcript:
        """The transcript of everything pushed so far (frozen segments + the open window, re-decoded)."""
        while self.todo:
            self.frozen.append(self.transcriber.decode_segment(self.todo.pop(0)))
        tail = self.cutter.tail()
        return assemble(self.name, self.frozen + ([self.transcriber.decode_segment(tail)] if tail else []))
