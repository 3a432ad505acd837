"""n-gram language models for pyctcdecode's beam search: KenLM or the pure-Python ARPA scorer behind one interface.

ARPA files (plain or .gz) are scored by KenLM when the `kenlm` module is installed (scripts/setup.sh installs the
`kenlm-ex` wheel) and by `src.ngram.ArpaModel` otherwise (same numbers, slower to load); KenLM binary files need
`kenlm`. Scores follow pyctcdecode: each word adds alpha * ln p_LM(word | history) + beta; a partial word that
starts no known word costs `unk_score_offset`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from src.ngram import BOS, EOS, UNK, ArpaModel, read_unigrams

logger = logging.getLogger(__name__)

LN_PER_LOG10 = math.log(10.0)
UNK_SCORE_OFFSET = -10.0  # pyctcdecode's default penalty for a word (or partial word) outside the LM vocabulary
AVG_WORD_LEN = 6  # pyctcdecode: partial unknown words longer than this cost proportionally more
KENLM_HINT = "install it with `pip install kenlm-ex` (a prebuilt KenLM wheel), or pass the ARPA file instead"
KENLM_MAGIC = b"mmap lm "


class KenlmScorer:
    """KenLM's model behind the ArpaModel interface (order, begin/null state, score(state, word), `in`)."""

    def __init__(self, path: str | Path) -> None:
        try:
            import kenlm
        except ImportError:
            raise ImportError(
                f"reading {path} with KenLM needs the kenlm module, which is not installed: {KENLM_HINT}"
            ) from None
        self._kenlm = kenlm
        self.model = kenlm.Model(str(path))
        self.order = int(self.model.order)

    def __contains__(self, word: str) -> bool:
        return word in self.model

    def begin_state(self):
        state = self._kenlm.State()
        self.model.BeginSentenceWrite(state)
        return state

    def null_state(self):
        state = self._kenlm.State()
        self.model.NullContextWrite(state)
        return state

    def score(self, state, word: str):
        out = self._kenlm.State()
        return self.model.BaseScore(state, word, out), out


def import_pyctcdecode():
    """pyctcdecode, imported quietly: its import-time kenlm warning is replaced by our own messages."""
    log = logging.getLogger("pyctcdecode")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import pyctcdecode
        from pyctcdecode import language_model
    except ImportError:
        raise ImportError("beam search needs pyctcdecode: pip install pyctcdecode (see requirements.txt)") from None
    finally:
        log.setLevel(max(level, logging.WARNING))  # its INFO lines (alphabet style) are noise here
    return pyctcdecode, language_model


def is_kenlm_binary(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(KENLM_MAGIC)) == KENLM_MAGIC


def kenlm_available() -> bool:
    try:
        import kenlm  # noqa: F401
    except ImportError:
        return False
    return True


def load_scorer(path: str | Path, backend: str = "auto"):
    """An n-gram scorer and its unigrams (None for KenLM binaries, whose vocabulary cannot be listed).

    Args:
        backend: "auto" (KenLM when installed, else pure Python for ARPA), "kenlm" or "python".
    Raises:
        FileNotFoundError / ValueError / ImportError, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"language model not found: {path}")
    if backend not in ("auto", "kenlm", "python"):
        raise ValueError(f"LM backend must be auto, kenlm or python, got {backend!r}")
    if is_kenlm_binary(path):
        if backend == "python":
            raise ValueError(f"{path} is a KenLM binary; the pure-Python scorer reads ARPA files only")
        return KenlmScorer(path), None
    if backend == "kenlm" or (backend == "auto" and kenlm_available()):
        return KenlmScorer(path), read_unigrams(path)
    logger.info("kenlm module not installed: scoring %s with the pure-Python ARPA reader", path)
    model = ArpaModel.read_arpa(path)
    return model, sorted(model.vocabulary)


def make_language_model(scorer, unigrams, alpha: float, beta: float, unk_score_offset: float = UNK_SCORE_OFFSET):
    """Wrap a scorer as a pyctcdecode AbstractLanguageModel (the class is defined on first use)."""
    _, lm_module = import_pyctcdecode()

    class NgramLanguageModel(lm_module.AbstractLanguageModel):
        """pyctcdecode's LanguageModel logic over any scorer (KenLM or the pure-Python ArpaModel)."""

        def __init__(self) -> None:
            self.scorer, self.alpha, self.beta, self.unk_score_offset = scorer, alpha, beta, unk_score_offset
            words = {w for w in (unigrams or []) if w not in (BOS, EOS, UNK)}
            self.unigrams = words
            self.prefixes = {w[:i] for w in words for i in range(1, len(w) + 1)} if words else None

        @property
        def order(self) -> int:
            return self.scorer.order

        def get_start_state(self):
            return self.scorer.begin_state()

        def score_partial_token(self, partial_token: str) -> float:
            oov = self.prefixes is None or partial_token not in self.prefixes
            penalty = self.unk_score_offset * oov
            return penalty * len(partial_token) / AVG_WORD_LEN if len(partial_token) > AVG_WORD_LEN else penalty

        def score(self, prev_state, word: str, is_last_word: bool = False):
            log10, state = self.scorer.score(prev_state, word)
            if (self.unigrams and word not in self.unigrams) or word not in self.scorer:
                log10 += self.unk_score_offset
            if is_last_word:
                log10 += self.scorer.score(state, EOS)[0]
            return self.alpha * log10 * LN_PER_LOG10 + self.beta, state

        def reset_params(self, **params) -> None:
            self.alpha = float(params.get("alpha", self.alpha))
            self.beta = float(params.get("beta", self.beta))

    return NgramLanguageModel()
