"""deepspeech_pytorch/decoder.py and src/greedydecoder.py: edit distance, WER/CER counts, greedy CTC decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepspeech_pytorch.decoder import Decoder, GreedyDecoder, edit_distance
from src.greedydecoder import MSGreedyDecoder

LABELS = json.loads((Path(__file__).resolve().parents[2] / "labels.json").read_text(encoding="utf-8"))
BLANK = 28


def ids(text: str) -> list[int]:
    return [LABELS.index(c) for c in text]


def one_hot(frames: list[int], classes: int = len(LABELS)) -> np.ndarray:
    """(1, T, C) probabilities that put all mass on the given label per frame."""
    probs = np.full((1, len(frames), classes), 0.001, np.float32)
    for t, k in enumerate(frames):
        probs[0, t, k] = 0.9
    return probs


def test_labels_layout() -> None:
    assert len(LABELS) == 29
    assert LABELS[0] == "'"
    assert LABELS[BLANK] == "_"
    assert LABELS[27] == " "


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("kitten", "sitting", 3),
        ("sitting", "kitten", 3),
        ("", "", 0),
        ("", "abc", 3),
        ("abcd", "", 4),
        ("abc", "abc", 0),
        ("abc", "acb", 2),
        ("flaw", "lawn", 2),
    ],
)
def test_edit_distance_on_strings(ref: str, hyp: str, expected: int) -> None:
    assert edit_distance(ref, hyp) == expected


def test_edit_distance_on_word_lists() -> None:
    assert edit_distance(["the", "cat", "sat"], ["the", "bat", "sat", "down"]) == 2
    assert edit_distance([], ["a"]) == 1


def _dp_distance(ref, hyp) -> int:
    """The textbook Levenshtein recurrence (unit costs), the definition edit_distance must keep."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def test_edit_distance_matches_the_textbook_recurrence() -> None:
    rng = np.random.default_rng(0)
    words = ["a", "ab", "b", "the", "cat", "'s"]
    for _ in range(200):
        ref = "".join(rng.choice(list("abc '"), rng.integers(0, 12)))
        hyp = "".join(rng.choice(list("abc '"), rng.integers(0, 12)))
        assert edit_distance(ref, hyp) == _dp_distance(ref, hyp)
        ref_words = list(rng.choice(words, rng.integers(0, 6)))
        hyp_words = list(rng.choice(words, rng.integers(0, 6)))
        assert edit_distance(ref_words, hyp_words) == _dp_distance(ref_words, hyp_words)


def test_decoder_indices() -> None:
    d = Decoder(LABELS)
    assert d.blank_index == BLANK
    assert d.space_index == 27
    assert Decoder("AB_C").blank_index == 2
    assert Decoder("ABC").blank_index == 2


def test_wer_counts_word_edits() -> None:
    d = Decoder(LABELS)
    assert d.wer("THE CAT SAT", "THE CAT SAT") == 0
    assert d.wer("THE CAT SAT", "THE BAT SAT") == 1
    assert d.wer("THE CAT SAT", "THE CAT") == 1
    assert d.wer("THE CAT", "A THE CAT ON") == 2
    assert d.wer("", "") == 0
    assert d.wer("", "HELLO WORLD") == 2
    assert d.wer("A  B", " A B ") == 0


def test_cer_counts_char_edits_ignoring_spaces() -> None:
    d = Decoder(LABELS)
    assert d.cer("THE CAT", "THECAT") == 0
    assert d.cer("THE CAT", "THE BAT") == 1
    assert d.cer("AB", "A B C") == 1
    assert d.cer("", "") == 0
    assert d.cer("", "A B") == 2


def test_greedy_decode_collapses_repeats_and_drops_blank() -> None:
    d = GreedyDecoder(LABELS)
    a, b = ids("A")[0], ids("B")[0]
    frames = [a, a, BLANK, a, b, b, BLANK, BLANK]
    strings, offsets = d.decode(one_hot(frames))
    assert strings == [["AAB"]]
    np.testing.assert_array_equal(offsets[0][0], [0, 3, 4])


def test_greedy_keeps_apostrophe_id_zero() -> None:
    # Upstream tested `if label_id:` and so dropped id 0, the apostrophe.
    d = GreedyDecoder(LABELS)
    frames = ids("IT") + [BLANK] + ids("'") + ids("'") + ids("S")
    strings, _ = d.decode(one_hot(frames))
    assert strings == [["IT'S"]]
    assert d.convert_to_strings([[0, 0, BLANK, 0]]) == [["'''"]]


def test_greedy_respects_sizes() -> None:
    d = GreedyDecoder(LABELS)
    rows = [ids("AB") + [BLANK] + ids("CD"), ids("XYZ") + [BLANK, BLANK]]
    probs = np.concatenate([one_hot(r) for r in rows])  # (2, 5, 29)
    strings, offsets = d.decode(probs, sizes=np.array([3, 2]))
    assert strings == [["AB"], ["XY"]]
    np.testing.assert_array_equal(offsets[1][0], [0, 1])
    strings, _ = d.decode(probs)
    assert strings == [["ABCD"], ["XYZ"]]


def test_convert_to_strings_api_shape() -> None:
    d = GreedyDecoder(LABELS)
    seqs = np.array([ids("HI") + [BLANK], ids("OO") + [BLANK]])
    assert d.convert_to_strings(seqs) == [["HI"], ["OO"]]
    assert d.convert_to_strings(seqs, remove_repetitions=True) == [["HI"], ["O"]]
    strings, offsets = d.convert_to_strings(seqs, sizes=[1, 3], return_offsets=True)
    assert strings == [["H"], ["OO"]]
    assert len(offsets) == 2 and len(offsets[0]) == 1
    np.testing.assert_array_equal(offsets[1][0], [0, 1])


def test_process_string_returns_text_and_frames() -> None:
    d = GreedyDecoder(LABELS)
    text, frames = d.process_string([BLANK] + ids("A B"), 4)
    assert text == "A B"
    assert frames.dtype == np.int64
    np.testing.assert_array_equal(frames, [1, 2, 3])


class FakeTensor:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def asnumpy(self) -> np.ndarray:
        return self.array


def test_ms_greedy_decoder_unwraps_tensors_and_flattens() -> None:
    d = MSGreedyDecoder(LABELS)
    probs = np.concatenate([one_hot(ids("IT'S")), one_hot(ids("A") + [BLANK] * 3)])
    texts, offsets = d.decode(FakeTensor(probs), FakeTensor(np.array([4, 2])))
    assert texts == ["IT'S", "A"]
    np.testing.assert_array_equal(offsets[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(offsets[1], [0])
    texts, _ = d.decode(probs)
    assert texts == ["IT'S", "A"]
