"""Our own torch-free decoder module with deepspeech.pytorch's V2-era API (numpy; edit distance from
python-Levenshtein, as deepspeech.pytorch does).

`Decoder.wer` / `Decoder.cer` return edit counts (not rates) exactly like the original, so callers sum them
over a corpus and divide by the total reference words / characters. CER ignores spaces, as in the lab.
"""

from __future__ import annotations

from collections.abc import Sequence

import Levenshtein
import numpy as np


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1) between two sequences.

    Strings compare characters; lists compare their items (words), via python-Levenshtein's C implementation.
    """
    return Levenshtein.distance(ref, hyp)


class Decoder:
    """Base decoder: label bookkeeping and the error counts.

    Args:
        labels: the label string or list; `blank_index` defaults to the '_' label (the last one here).
    """

    def __init__(self, labels: Sequence[str], blank_index: int | None = None) -> None:
        self.labels = list(labels)
        self.int_to_char = dict(enumerate(self.labels))
        if blank_index is None:
            blank_index = self.labels.index("_") if "_" in self.labels else len(self.labels) - 1
        self.blank_index = blank_index
        self.space_index = self.labels.index(" ") if " " in self.labels else len(self.labels)

    def wer(self, s1: str, s2: str) -> int:
        """Word edits between reference s1 and hypothesis s2."""
        return edit_distance(s1.split(), s2.split())

    def cer(self, s1: str, s2: str) -> int:
        """Character edits between s1 and s2 with spaces removed."""
        return edit_distance(s1.replace(" ", ""), s2.replace(" ", ""))

    def decode(self, probs, sizes=None):
        raise NotImplementedError


class GreedyDecoder(Decoder):
    """Best-path CTC decoding: argmax per frame, collapse repeats, drop the blank."""

    def convert_to_strings(self, sequences, sizes=None, remove_repetitions: bool = False, return_offsets: bool = False):
        """Turn (N, T) label-id sequences into [[text]] (and [[frame offsets]] when return_offsets)."""
        strings, offsets = [], []
        for i, seq in enumerate(sequences):
            size = int(sizes[i]) if sizes is not None else len(seq)
            text, where = self.process_string(seq, size, remove_repetitions)
            strings.append([text])
            offsets.append([where])
        return (strings, offsets) if return_offsets else strings

    def process_string(self, sequence, size: int, remove_repetitions: bool = False) -> tuple[str, np.ndarray]:
        """Text of the first `size` ids (blanks dropped, repeats collapsed if asked) and each char's frame."""
        chars, frames = [], []
        for t in range(size):
            label = int(sequence[t])
            if label == self.blank_index:
                continue
            if remove_repetitions and t > 0 and label == int(sequence[t - 1]):
                continue
            chars.append(self.int_to_char[label])
            frames.append(t)
        return "".join(chars), np.asarray(frames, dtype=np.int64)

    def decode(self, probs, sizes=None):
        """Greedy decode (N, T, C) probabilities with valid lengths `sizes` -> (strings, offsets)."""
        best = np.argmax(np.asarray(probs), axis=2)
        return self.convert_to_strings(best, sizes, remove_repetitions=True, return_offsets=True)
