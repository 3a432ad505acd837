"""N-gram language models in ARPA format, pure Python: build one (modified Kneser-Ney), read one, score with backoff.

The builder exists so the LM path can be tested offline (`tools/build_lm.py`); real runs use the LibriSpeech LM.
The reader/scorer is the fallback when the `kenlm` module is not installed, with KenLM's semantics: log10
probabilities, `<s>` starts a sentence, `</s>` ends one, unknown words score as `<unk>` (-100 when the model has
no `<unk>`, as KenLM assumes), and a state is the longest suffix of the history that the model can still extend.
"""

from __future__ import annotations

import gzip
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from src.atomic import atomic_write

logger = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
NO_UNK_LOG10 = -100.0  # KenLM's log10 probability for <unk> when the ARPA file does not list it
BOS_LOG10 = -99.0  # <s> is never predicted; the usual ARPA placeholder
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # when count-of-counts are too sparse for the closed-form estimate

Ngram = tuple[str, ...]


# ------------------------------------------------------------------------------------------------------- building
def count_ngrams(sentences: Iterable[list[str]], order: int) -> list[Counter]:
    """Raw counts of every n-gram (n = 1..order) in sentences padded as `<s> w1 .. wk </s>`.

    Returns:
        counts[n - 1]: Counter of n-gram tuples.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    counts = [Counter() for _ in range(order)]
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            counts[n - 1].update(tuple(padded[i : i + n]) for i in range(len(padded) - n + 1))
    return counts


def kneser_ney_counts(raw: list[Counter]) -> list[Counter]:
    """Kneser-Ney adjusted counts: raw counts at the highest order and for n-grams starting with `<s>` (nothing
    precedes them); elsewhere the number of distinct words seen just before the n-gram (continuation counts)."""
    adjusted = [Counter() for _ in raw]
    adjusted[-1] = Counter(raw[-1])
    for n in range(len(raw) - 1, 0, -1):  # n-grams of length n+1 give continuation counts to their n-suffixes
        for gram in raw[n]:
            adjusted[n - 1][gram[1:]] += 1
    for n in range(len(raw) - 1):
        for gram, c in raw[n].items():
            if gram[0] == BOS:
                adjusted[n][gram] = c
    return adjusted


def discounts(counts: Counter) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from count-of-counts (Chen & Goodman), each 0 < Dk < k.

    Sparse data (tiny corpora) can make the closed form invalid: then the single Kneser-Ney discount
    Y = n1 / (n1 + 2 n2) is used for all three, or FALLBACK_DISCOUNTS when even Y is undefined.
    """
    n = Counter(min(c, 4) for c in counts.values() if c > 0)
    y = n[1] / (n[1] + 2 * n[2]) if n[1] > 0 else 0.0
    if all(n[k] > 0 for k in (1, 2, 3, 4)):
        ds = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
        if all(0 < d < k for k, d in enumerate(ds, start=1)):
            return ds
    if 0 < y < 1:
        logger.info("count-of-counts %s: modified discounts invalid, using one discount %.3f", dict(n), y)
        return (y, y, y)
    logger.warning("count-of-counts %s too sparse for Kneser-Ney: using discounts %s", dict(n), FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


@dataclass
class _Context:
    total: float = 0.0
    discounted: float = 0.0  # sum of the discounts taken from this context's n-grams


def _interpolate(counts: Counter, ds: tuple[float, float, float], lower) -> tuple[dict, dict]:
    """Interpolated probabilities of one order's n-grams and the backoff weight (gamma) of each context."""
    contexts: dict[Ngram, _Context] = defaultdict(_Context)
    for gram, c in counts.items():
        ctx = contexts[gram[:-1]]
        ctx.total += c
        ctx.discounted += ds[min(c, 3) - 1]
    gammas = {h: ctx.discounted / ctx.total for h, ctx in contexts.items()}
    probs = {}
    for gram, c in counts.items():
        h = gram[:-1]
        probs[gram] = (c - ds[min(c, 3) - 1]) / contexts[h].total + gammas[h] * lower(gram)
    return probs, gammas


def build_kneser_ney(sentences: Iterable[list[str]], order: int = 3) -> ArpaModel:
    """Interpolated modified Kneser-Ney n-gram model, written as a backoff model (ARPA semantics).

    The unigram level interpolates with the uniform distribution over the vocabulary (words, `</s>`, `<unk>`),
    so `<unk>` gets a small, non-zero probability. In ARPA form a seen n-gram stores its interpolated
    probability and a context stores its gamma as backoff weight, so every conditional distribution sums to 1.
    """
    raw = count_ngrams(sentences, order)
    adjusted = kneser_ney_counts(raw)
    unigram_counts = Counter({g: c for g, c in adjusted[0].items() if g != (BOS,)})
    unigram_counts.setdefault((UNK,), 0)
    vocab_size = len(unigram_counts)
    seen = Counter({g: c for g, c in unigram_counts.items() if c > 0})
    probs, gammas = _interpolate(seen, discounts(seen), lambda gram: 1.0 / vocab_size)
    gamma0 = gammas.get((), 1.0)
    tables: list[dict[Ngram, float]] = [{g: probs.get(g, gamma0 / vocab_size) for g in unigram_counts}]
    backoffs: list[dict[Ngram, float]] = []
    for n in range(2, order + 1):
        lower_table = tables[-1]
        probs, gammas = _interpolate(adjusted[n - 1], discounts(adjusted[n - 1]), lambda g, t=lower_table: t[g[1:]])
        tables.append(probs)
        backoffs.append(gammas)
    backoffs.append({})
    entries = []
    for n, table in enumerate(tables):
        level = {g: (math.log10(p), _log10_or_none(backoffs[n].get(g))) for g, p in table.items()}
        if n == 0:
            level[(BOS,)] = (BOS_LOG10, _log10_or_none(backoffs[0].get((BOS,))))
        entries.append(level)
    return ArpaModel(entries)


def _log10_or_none(value: float | None) -> float | None:
    return None if value is None else math.log10(value)


# ------------------------------------------------------------------------------------------------------- the model
class ArpaModel:
    """A backoff n-gram model: per order, n-gram -> (log10 probability, log10 backoff or None).

    Scoring follows KenLM: `score(state, word)` returns (log10 p(word | state), next state); states are tuples.
    """

    def __init__(self, entries: list[dict[Ngram, tuple[float, float | None]]]) -> None:
        if not entries or not entries[0]:
            raise ValueError("an n-gram model needs at least one unigram")
        self.entries = entries
        self.order = len(entries)
        unk = entries[0].get((UNK,))
        self.unk_log10 = unk[0] if unk is not None else NO_UNK_LOG10

    @property
    def vocabulary(self) -> set[str]:
        """Every word with a unigram entry (including `<s>`, `</s>` and `<unk>` when listed)."""
        return {g[0] for g in self.entries[0]}

    def __contains__(self, word: str) -> bool:
        return (word,) in self.entries[0]

    def begin_state(self) -> Ngram:
        """The state at the start of a sentence (KenLM's BeginSentenceWrite)."""
        return (BOS,)

    def null_state(self) -> Ngram:
        """The empty context (KenLM's NullContextWrite)."""
        return ()

    def score(self, state: Ngram, word: str) -> tuple[float, Ngram]:
        """log10 p(word | state) with backoff, and the state after `word`."""
        if (word,) not in self.entries[0]:
            word = UNK
        history = state[max(0, len(state) - (self.order - 1)) :] if self.order > 1 else ()
        log10 = 0.0
        for k in range(len(history), -1, -1):  # longest context first; back off one word at a time
            ctx = history[len(history) - k :]
            hit = self.entries[k].get((*ctx, word))
            if hit is not None:
                log10 += hit[0]
                break
            if k == 0:
                log10 += self.unk_log10
                break
            bow = self.entries[k - 1].get(ctx)
            if bow is not None and bow[1] is not None:
                log10 += bow[1]
        return log10, self._trim((*history, word))

    def _trim(self, history: Ngram) -> Ngram:
        """The longest suffix the model can extend (listed as an n-gram below the top order); scores don't change,
        since a context missing from the model has no n-grams and a backoff weight of 1."""
        history = history[max(0, len(history) - (self.order - 1)) :]
        while history and history not in self.entries[len(history) - 1]:
            history = history[1:]
        return history

    def sentence_log10(self, words: list[str], bos: bool = True, eos: bool = True) -> float:
        """Total log10 probability of a word sequence (KenLM's Model.score)."""
        state = self.begin_state() if bos else self.null_state()
        total = 0.0
        for word in [*words, EOS] if eos else words:
            log10, state = self.score(state, word)
            total += log10
        return total

    # ---------------------------------------------------------------------------------------------- ARPA I/O
    def write_arpa(self, path: str | Path) -> Path:
        """Write the model as an ARPA file (gzip-compressed when the name ends in .gz), atomically."""
        path = Path(path)

        def produce(tmp: Path) -> None:
            with _open_text(tmp, "w", compress=path.name.endswith(".gz")) as f:
                f.write("\n\\data\\\n")
                for n, level in enumerate(self.entries, start=1):
                    f.write(f"ngram {n}={len(level)}\n")
                for n, level in enumerate(self.entries, start=1):
                    f.write(f"\n\\{n}-grams:\n")
                    for gram in sorted(level):
                        log10, bow = level[gram]
                        line = f"{log10:.7g}\t{' '.join(gram)}"
                        f.write(line + (f"\t{bow:.7g}\n" if bow is not None and n < self.order else "\n"))
                f.write("\n\\end\\\n")

        return atomic_write(path, produce)

    @classmethod
    def read_arpa(cls, path: str | Path) -> ArpaModel:
        """Parse an ARPA file (plain or .gz).

        Raises:
            FileNotFoundError: no such file.
            ValueError: malformed content; the message names the file and line.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"language model not found: {path}")
        with _open_text(path, "r") as f:
            return cls(list(_parse_arpa(f, str(path))))


def _open_text(path: Path, mode: str, compress: bool = False) -> IO[str]:
    if compress or (mode == "r" and _is_gzip(path)):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _parse_arpa(lines: Iterable[str], name: str) -> Iterator[dict[Ngram, tuple[float, float | None]]]:
    """Yield one dict per order; checks the header counts against the sections."""
    expected: dict[int, int] = {}
    section: dict | None = None
    n = 0
    where = name
    try:
        for line_no, line in enumerate(lines, start=1):
            where = f"{name}:{line_no}"
            text = line.strip()
            if not text:
                continue
            if text.startswith("ngram ") and section is None:
                order, count = text[6:].split("=")
                expected[int(order)] = int(count)
            elif text.startswith("\\") and text.endswith("-grams:"):
                if section is not None:
                    yield _checked(section, n, expected, where)
                n, section = int(text[1 : -len("-grams:")]), {}
            elif text == "\\end\\":
                if section is not None:
                    yield _checked(section, n, expected, where)
                if n != len(expected):
                    raise ValueError(f"{where}: header lists {len(expected)} orders, file has {n}")
                return
            elif section is not None:
                fields = text.split()
                if len(fields) not in (n + 1, n + 2):
                    raise ValueError(f"{where}: expected {n} words, a log10 probability and an optional backoff")
                bow = float(fields[n + 1]) if len(fields) == n + 2 else None
                section[tuple(fields[1 : n + 1])] = (float(fields[0]), bow)
    except ValueError as err:
        raise ValueError(str(err) if str(err).startswith(name) else f"{where}: {err}") from None
    raise ValueError(f"{name}: not an ARPA file (no \\data\\ header, or no \\end\\ line)")


def _checked(section: dict, n: int, expected: dict[int, int], where: str) -> dict:
    if expected.get(n) != len(section):
        raise ValueError(f"{where}: header says {expected.get(n)} {n}-grams, the section holds {len(section)}")
    return section


def read_unigrams(path: str | Path) -> list[str]:
    """The words of an ARPA file's 1-gram section, read without loading the rest (for the beam search's
    vocabulary when KenLM does the scoring)."""
    path = Path(path)
    words = []
    with _open_text(path, "r") as f:
        inside = False
        for line in f:
            text = line.strip()
            if text == "\\1-grams:":
                inside = True
            elif inside and text.startswith("\\"):
                break
            elif inside and text:
                fields = text.split()
                if len(fields) >= 2:
                    words.append(fields[1])
    if not words:
        raise ValueError(f"{path}: no 1-grams found (not an ARPA file?)")
    return words
