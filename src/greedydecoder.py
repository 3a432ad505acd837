"""Greedy (best-path) CTC decoding, in one place: argmax per frame, collapse repeats, drop the blank.

`MSGreedyDecoder` is eval's decoder (MindSpore tensors in, deepspeech_pytorch's GreedyDecoder does the work);
`GreedyCTCDecoder` is the same decoding as a `DecodeFn` for `src.evaluation.evaluate` plus `hypothesis()` with word
frames for transcription. `WordSpan`/`Hypothesis` are what every decoder (greedy or beam) returns per utterance.
Labels follow labels.json: the blank is the last label, the space separates words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepspeech_pytorch.decoder import GreedyDecoder


def _to_numpy(x) -> np.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class MSGreedyDecoder(GreedyDecoder):
    """GreedyDecoder that accepts MindSpore tensors; `decode` returns (list of texts, list of frame offsets)."""

    def decode(self, probs, sizes=None):
        strings, offsets = super().decode(_to_numpy(probs), None if sizes is None else _to_numpy(sizes))
        return [s[0] for s in strings], [o[0] for o in offsets]


@dataclass(frozen=True)
class WordSpan:
    """A decoded word and its output frames [start, end) (one output frame = 2 spectrogram hops = 20 ms)."""

    word: str
    start: int
    end: int


@dataclass
class Hypothesis:
    """A decoded utterance: words joined by single spaces, and each word's frames."""

    text: str
    words: list[WordSpan]


def greedy_hypothesis(probs: np.ndarray, labels: Sequence[str]) -> Hypothesis:
    """Best path: argmax per frame, collapse repeats, drop blanks; a word spans its characters' frames.

    Args:
        probs: (T', C) posteriors (or log posteriors) of one utterance, valid frames only.
    """
    best = np.argmax(probs, axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    blank, space = len(labels) - 1, labels.index(" ")
    words: list[WordSpan] = []
    chars, start, end, prev = [], -1, -1, -1
    for t, k in enumerate(best.tolist()):
        if k == prev and k != blank:
            end = t + 1  # a repeated character extends its span
        elif k == space or k == blank:
            if k == space and chars:
                words.append(WordSpan("".join(chars), start, end))
                chars = []
        else:
            if not chars:
                start = t
            chars.append(labels[k])
            end = t + 1
        prev = k
    if chars:
        words.append(WordSpan("".join(chars), start, end))
    return Hypothesis(" ".join(w.word for w in words), words)


class GreedyCTCDecoder:
    """Greedy decoding; as a DecodeFn it returns exactly what eval's MSGreedyDecoder returns."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self._greedy = MSGreedyDecoder(self.labels, blank_index=len(self.labels) - 1)

    def __call__(self, probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        """DecodeFn: (n, T', C) posteriors and (n,) valid lengths -> n texts."""
        return self._greedy.decode(probs, lengths)[0]

    def hypothesis(self, probs: np.ndarray) -> Hypothesis:
        return greedy_hypothesis(probs, self.labels)
