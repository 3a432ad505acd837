"""The one evaluation routine (eval.py, the trainer's per-epoch validation, tools/tune_lm.py): decode, score, account.

WER = sum of word edits / sum of reference words; CER = sum of character edits / sum of reference characters,
spaces removed (the lab's definitions, corpus level). Per-utterance rates divide by max(1, reference size), so
an empty reference never divides by zero.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from deepspeech_pytorch.decoder import Decoder
from src.atomic import atomic_write


@dataclass
class UtteranceResult:
    source: str
    reference: str
    hypothesis: str
    word_errors: int
    words: int
    char_errors: int
    chars: int

    @property
    def wer(self) -> float:
        return self.word_errors / max(1, self.words)

    @property
    def cer(self) -> float:
        return self.char_errors / max(1, self.chars)


@dataclass
class EvalResult:
    utterances: list[UtteranceResult] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.utterances)

    @property
    def wer(self) -> float:
        return sum(u.word_errors for u in self.utterances) / max(1, sum(u.words for u in self.utterances))

    @property
    def cer(self) -> float:
        return sum(u.char_errors for u in self.utterances) / max(1, sum(u.chars for u in self.utterances))


def score(decoder: Decoder, reference: str, hypothesis: str, source: str = "") -> UtteranceResult:
    """Edit counts of one utterance."""
    return UtteranceResult(
        source,
        reference,
        hypothesis,
        decoder.wer(reference, hypothesis),
        len(reference.split()),
        decoder.cer(reference, hypothesis),
        len(reference.replace(" ", "")),
    )


# predict(features (N,1,F,T), lengths (N,)) -> probabilities (N, T', C), output lengths (N,)
PredictFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# decode(probabilities (n, T', C), lengths (n,)) -> n texts
DecodeFn = Callable[[np.ndarray, np.ndarray], list[str]]


class EvalMemoryError(ValueError):
    """A batch did not fit in memory; the message names its first clip and the settings that bound it."""


def predict_or_explain(predict: PredictFn, batch) -> tuple[np.ndarray, np.ndarray]:
    """predict(batch.features, batch.lengths), with an allocation failure turned into a one-line EvalMemoryError.

    MindSpore reports a failed allocation as RuntimeError('std::bad_alloc'); which clips and which settings
    decide a batch's memory is what the user needs to know instead.
    """
    try:
        return predict(batch.features, batch.lengths)
    except (RuntimeError, MemoryError) as err:
        if not isinstance(err, MemoryError) and "bad_alloc" not in str(err) and "memory" not in str(err).lower():
            raise
        rows, frames = batch.features.shape[0], batch.features.shape[3]
        raise EvalMemoryError(
            f"{batch.sources[0]}: out of memory evaluating a batch of {rows} clip(s) x {frames} padded frames; "
            "lower --batch_size or DataConfig.max_batch_seconds, or cut long clips shorter with "
            "DataConfig.max_eval_seconds"
        ) from None


def evaluate(predict: PredictFn, dataset, decode: DecodeFn, decoder: Decoder, on_utterance=None) -> EvalResult:
    """Run a dataset (src.dataset.SpeechDataset, eval mode) through `predict` and `decode`, and score it.

    A clip cut into segments (Batch.part) is scored once, on its segments' hypotheses joined with spaces.
    Args:
        on_utterance: optional callback(UtteranceResult), e.g. to print as results arrive.
    Raises:
        RuntimeError: an utterance was counted twice or not at all (never expected).
    """
    result = EvalResult()
    failed_before = sum(dataset.failed.values())
    scheduled = sum(len(b) for b in dataset.epoch_batches(0))
    pieces: list[str] = []  # hypotheses of the segments so far of a clip cut into segments (Batch.part)
    for _, batch in dataset.iterate(0):
        probs, out_lengths = predict_or_explain(predict, batch)
        n = batch.size
        hyps = decode(np.asarray(probs)[:n], np.asarray(out_lengths)[:n])
        k, parts = batch.part
        if parts > 1:
            pieces.append(hyps[0])
            if k < parts - 1:
                continue
            hyps, pieces = [" ".join(p for p in pieces if p)], []
        for ref, hyp, src in zip(batch.texts, hyps, batch.sources):
            utt = score(decoder, ref, hyp, src)
            result.utterances.append(utt)
            if on_utterance is not None:
                on_utterance(utt)
    expected = scheduled - (sum(dataset.failed.values()) - failed_before)
    sources = {u.source for u in result.utterances}
    if result.count != expected or len(sources) != result.count:
        raise RuntimeError(
            f"evaluation counted {result.count} utterances ({len(sources)} distinct), expected {expected}"
        )
    return result


def write_results(result: EvalResult, path: str | Path) -> Path:
    """Per-utterance results as CSV (or JSON when the name ends in .json), plus the corpus totals for JSON.

    Raises:
        AtomicWriteError: the file could not be written (named, with the reason); nothing partial is left.
    """
    path = Path(path)
    rows = [dict(asdict(u), wer=u.wer, cer=u.cer) for u in result.utterances]

    def produce(tmp: Path) -> None:
        if path.suffix.lower() == ".json":
            doc = {"wer": result.wer, "cer": result.cer, "count": result.count, "utterances": rows}
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            return
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["source"])
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, produce)
