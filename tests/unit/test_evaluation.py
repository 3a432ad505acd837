"""src/evaluation.py: per-utterance scores, corpus-level WER/CER, evaluate() accounting, result files."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepspeech_pytorch.decoder import Decoder, GreedyDecoder
from src.config import SpectConfig
from src.dataset import Batch, SpeechDataset, load_utterances
from src.evaluation import EvalResult, UtteranceResult, evaluate, score, write_results

LABELS = json.loads((Path(__file__).resolve().parents[2] / "labels.json").read_text(encoding="utf-8"))
DECODER = Decoder(LABELS)


def test_score_counts_edits_and_sizes() -> None:
    u = score(DECODER, "THE CAT SAT", "THE BAT SAT", source="m.csv:3")
    assert u == UtteranceResult("m.csv:3", "THE CAT SAT", "THE BAT SAT", 1, 3, 1, 9)
    assert u.wer == pytest.approx(1 / 3)
    assert u.cer == pytest.approx(1 / 9)


def test_empty_reference_does_not_divide_by_zero() -> None:
    u = score(DECODER, "", "HI THERE")
    assert (u.word_errors, u.words, u.char_errors, u.chars) == (2, 0, 7, 0)
    assert u.wer == 2.0
    assert u.cer == 7.0
    empty = EvalResult()
    assert (empty.count, empty.wer, empty.cer) == (0, 0.0, 0.0)
    only_empty = EvalResult([score(DECODER, "", "")])
    assert (only_empty.wer, only_empty.cer) == (0.0, 0.0)


def test_corpus_rates_are_sum_of_edits_over_sum_of_reference() -> None:
    short = score(DECODER, "A", "B")  # 1 word edit / 1 word, 1 char edit / 1 char
    nine = "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE"
    long = score(DECODER, nine, nine)
    result = EvalResult([short, long])
    assert result.count == 2
    assert result.wer == pytest.approx(1 / 10)  # mean of per-utterance rates would be 0.5
    assert np.mean([short.wer, long.wer]) == pytest.approx(0.5)
    chars = 1 + len("ONETWOTHREEFOURFIVESIXSEVENEIGHTNINE")
    assert result.cer == pytest.approx(1 / chars)


def test_write_results_csv_round_trip(tmp_path: Path) -> None:
    result = EvalResult([score(DECODER, "THE CAT", "THE BAT", "a:1"), score(DECODER, "IT'S", "ITS", "a:2")])
    path = write_results(result, tmp_path / "sub" / "out.csv")
    assert path == tmp_path / "sub" / "out.csv"
    assert not (tmp_path / "sub" / "out.csv.tmp").exists()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["source"] for r in rows] == ["a:1", "a:2"]
    assert rows[1]["reference"] == "IT'S"
    assert rows[1]["hypothesis"] == "ITS"
    assert int(rows[0]["word_errors"]) == 1 and int(rows[0]["words"]) == 2
    assert int(rows[1]["char_errors"]) == 1 and int(rows[1]["chars"]) == 4
    assert float(rows[0]["wer"]) == pytest.approx(0.5)
    assert float(rows[1]["cer"]) == pytest.approx(0.25)


def test_write_results_json_round_trip(tmp_path: Path) -> None:
    result = EvalResult([score(DECODER, "THE CAT", "THE BAT", "a:1"), score(DECODER, "DOG", "DOG", "a:2")])
    doc = json.loads(write_results(result, tmp_path / "out.json").read_text(encoding="utf-8"))
    assert doc["count"] == 2
    assert doc["wer"] == pytest.approx(1 / 3)
    assert doc["cer"] == pytest.approx(1 / 9)
    assert [u["source"] for u in doc["utterances"]] == ["a:1", "a:2"]
    first = {k: v for k, v in doc["utterances"][0].items() if k not in ("wer", "cer")}
    assert UtteranceResult(**first) == result.utterances[0]


def test_write_results_empty_csv(tmp_path: Path) -> None:
    path = write_results(EvalResult(), tmp_path / "empty.csv")
    assert path.read_text(encoding="utf-8").strip() == "source"


# --- evaluate() with a fake model and dataset -------------------------------------------------------------

HYPS = {0: "THE CAT", 1: "A DOG", 2: "IT'S", 3: "NO"}
REFS = {0: "THE CAT", 1: "THE DOG", 2: "IT'S", 3: "NO NO"}


def encode(text: str) -> list[int]:
    return [LABELS.index(c) for c in text]


def make_batch(utt_ids: list[int], rows: int) -> Batch:
    """A padded eval batch: features[i, 0, 0, 0] holds the utterance id; extra rows repeat the first."""
    n = len(utt_ids)
    padded = utt_ids + [utt_ids[0]] * (rows - n)
    features = np.zeros((rows, 1, 4, 8), np.float32)
    features[:, 0, 0, 0] = padded
    return Batch(
        features=features,
        lengths=np.full(rows, 8, np.int32),
        labels=np.zeros((rows, 4), np.int32),
        label_lengths=np.ones(rows, np.int32),
        texts=[REFS[i] for i in utt_ids],
        sources=[f"m.csv:{i + 1}" for i in utt_ids],
        size=n,
    )


class FakeDataset:
    """Schedules `utts` utterances; `fail_during` clips become unreadable while iterating."""

    def __init__(self, batches: list[Batch], utts: int, fail_during: int = 0) -> None:
        self.batches = batches
        self.utts = list(range(utts))
        self.failed: Counter = Counter({"old.wav": 5})  # failures of earlier passes must not count
        self.fail_during = fail_during
        self.epochs: list[int] = []

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        return [[u] for u in self.utts]

    def iterate(self, epoch: int):
        self.epochs.append(epoch)
        self.failed["b.wav"] += self.fail_during
        yield from enumerate(self.batches)


def fake_predict(features: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,1,F,T) -> one-hot (N, 16, 29) spelling HYPS[id], blanks elsewhere."""
    probs = np.zeros((features.shape[0], 16, len(LABELS)), np.float32)
    probs[:, :, -1] = 1.0
    out_lengths = np.full(features.shape[0], 16, np.int32)
    for row, uid in enumerate(features[:, 0, 0, 0].astype(int)):
        for t, k in enumerate(encode(HYPS[uid])):
            probs[row, 2 * t, -1] = 0.0
            probs[row, 2 * t, k] = 1.0
    return probs, out_lengths


def test_evaluate_counts_each_utterance_once_and_ignores_padded_rows() -> None:
    greedy = GreedyDecoder(LABELS)
    seen_rows: list[int] = []

    def decode(probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        seen_rows.append(probs.shape[0])
        assert lengths.shape == (probs.shape[0],)
        return [s[0] for s in greedy.decode(probs, lengths)[0]]

    # Batches of 3 rows holding 2, 1 and 1 real utterances; the padded rows repeat each batch's first one.
    dataset = FakeDataset([make_batch([0, 1], 3), make_batch([2], 3), make_batch([3], 3)], utts=4)
    streamed: list[str] = []
    result = evaluate(fake_predict, dataset, decode, DECODER, on_utterance=lambda u: streamed.append(u.source))
    assert dataset.epochs == [0]
    assert seen_rows == [2, 1, 1]
    assert result.count == 4
    assert [u.source for u in result.utterances] == ["m.csv:1", "m.csv:2", "m.csv:3", "m.csv:4"]
    assert streamed == ["m.csv:1", "m.csv:2", "m.csv:3", "m.csv:4"]
    assert [u.hypothesis for u in result.utterances] == ["THE CAT", "A DOG", "IT'S", "NO"]
    # word edits 0 + 1 + 0 + 1 over 2 + 2 + 1 + 2 reference words
    assert result.wer == pytest.approx(2 / 7)


def test_evaluate_accounts_for_failed_clips() -> None:
    def decode(probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        return ["X"] * probs.shape[0]

    dataset = FakeDataset([make_batch([0, 2], 2)], utts=3, fail_during=1)
    result = evaluate(fake_predict, dataset, decode, DECODER)
    assert result.count == 2


@pytest.mark.parametrize(
    ("batches", "utts"),
    [
        ([[0], [0]], 2),  # the same utterance twice
        ([[0]], 2),  # one utterance never seen
    ],
)
def test_evaluate_rejects_miscounts(batches: list[list[int]], utts: int) -> None:
    def decode(probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        return ["X"] * probs.shape[0]

    dataset = FakeDataset([make_batch(b, 1) for b in batches], utts=utts)
    with pytest.raises(RuntimeError, match="expected 2"):
        evaluate(fake_predict, dataset, decode, DECODER)


# --- evaluate() over a real eval-mode SpeechDataset ---------------------------------------------------------


def real_dataset(tmp_path: Path, clips: int, **kwargs) -> SpeechDataset:
    rows = []
    for i in range(clips):
        wav = tmp_path / f"c{i}.wav"
        t = np.arange(8000 + 800 * i) / 16000
        sf.write(str(wav), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
        (tmp_path / f"c{i}.txt").write_text("HI", encoding="utf-8")
        rows.append(f"{wav},{tmp_path / f'c{i}.txt'}\n")
    (tmp_path / "m.csv").write_text("".join(rows), encoding="utf-8")
    utts = load_utterances(str(tmp_path / "m.csv"), LABELS, SpectConfig())
    return SpeechDataset(utts, SpectConfig(), batch_size=2, training=False, num_workers=1, **kwargs)


def blank_predict(features: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.zeros((features.shape[0], 4, len(LABELS)), np.float32)
    probs[:, :, -1] = 1.0
    return probs, np.full(features.shape[0], 4, np.int32)


def blank_decode(probs: np.ndarray, lengths: np.ndarray) -> list[str]:
    return [s[0] for s in GreedyDecoder(LABELS).decode(probs, lengths)[0]]


def test_evaluate_real_dataset_with_a_corrupt_clip(tmp_path: Path) -> None:
    dataset = real_dataset(tmp_path, 3)
    (tmp_path / "c1.wav").write_bytes(b"garbage" * 20)
    result = evaluate(blank_predict, dataset, blank_decode, DECODER)
    assert result.count == 2
    assert result.wer == 1.0  # empty hypotheses: one deletion per reference word


def test_evaluate_twice_with_a_corrupt_clip(tmp_path: Path) -> None:
    dataset = real_dataset(tmp_path, 3)
    (tmp_path / "c1.wav").write_bytes(b"garbage" * 20)
    assert evaluate(blank_predict, dataset, blank_decode, DECODER).count == 2
    assert evaluate(blank_predict, dataset, blank_decode, DECODER).count == 2


def test_evaluate_on_a_sharded_dataset(tmp_path: Path) -> None:
    dataset = real_dataset(tmp_path, 4, rank=0, world=2)
    assert evaluate(blank_predict, dataset, blank_decode, DECODER).count == 2
