"""CTC decoding beyond eval's greedy path: greedy or beam search (pyctcdecode) with an optional n-gram LM, and
word timings in output frames. No MindSpore import: everything here works on numpy posteriors.

Both decoders are `DecodeFn`s for `src.evaluation.evaluate` (`decoder(probs (n, T', C), lengths (n,))` -> texts)
and give `hypothesis(probs (T', C))` -> text plus word spans for transcription. Labels follow labels.json: the
blank is the last label, the space separates words.

Language models: ARPA files (plain or .gz) are scored by KenLM when the `kenlm` module is installed and by the
pure-Python `src.ngram.ArpaModel` otherwise (same numbers, slower to load); KenLM binary files need `kenlm`.
Scores follow pyctcdecode: each word adds alpha * ln p_LM(word | history) + beta; a partial word that starts no
known word costs `unk_score_offset`.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepspeech_pytorch.decoder import Decoder, GreedyDecoder
from src.config import LMConfig
from src.evaluation import EvalResult, score
from src.ngram import BOS, EOS, UNK, ArpaModel, read_unigrams

logger = logging.getLogger(__name__)

DECODER_TYPES = ("greedy", "beam")
LOG_CLIP = math.log(1e-15)  # pyctcdecode's floor for log probabilities
LN_PER_LOG10 = math.log(10.0)
UNK_SCORE_OFFSET = -10.0  # pyctcdecode's default penalty for a word (or partial word) outside the LM vocabulary
AVG_WORD_LEN = 6  # pyctcdecode: partial unknown words longer than this cost proportionally more
KENLM_HINT = "install it with `pip install kenlm-ex` (a prebuilt KenLM wheel), or pass the ARPA file instead"
KENLM_MAGIC = b"mmap lm "


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


def validate_lm_config(lm: LMConfig) -> None:
    """Check LMConfig once, before any audio is processed; errors name the bad value."""
    if lm.decoder_type not in DECODER_TYPES:
        raise ValueError(f"LMConfig.decoder_type must be one of {DECODER_TYPES}, got {lm.decoder_type!r}")
    if lm.beam_width <= 0 or lm.cutoff_top_n <= 0:
        raise ValueError("LMConfig: beam_width and cutoff_top_n must be positive")
    if not 0 < lm.cutoff_prob <= 1:
        raise ValueError(f"LMConfig.cutoff_prob must be in (0, 1], got {lm.cutoff_prob}")
    if lm.lm_path and lm.decoder_type != "beam":
        raise ValueError("LMConfig.lm_path is set but decoder_type is 'greedy': pass --decoder beam to use the LM")
    if lm.lm_path and not Path(lm.lm_path).is_file():
        raise FileNotFoundError(f"LMConfig.lm_path not found: {lm.lm_path}")


# ---------------------------------------------------------------------------------------------------- greedy
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
        self._greedy = GreedyDecoder(self.labels, blank_index=len(self.labels) - 1)

    def __call__(self, probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        strings, _ = self._greedy.decode(np.asarray(probs), np.asarray(lengths))
        return [s[0] for s in strings]

    def hypothesis(self, probs: np.ndarray) -> Hypothesis:
        return greedy_hypothesis(probs, self.labels)


# ------------------------------------------------------------------------------------------------ language model
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


def _import_pyctcdecode():
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
    _, lm_module = _import_pyctcdecode()

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


# ---------------------------------------------------------------------------------------------------- beam search
def prune_frames(probs: np.ndarray, top_n: int, cutoff_prob: float) -> np.ndarray:
    """Log posteriors where each frame keeps only its `top_n` best labels, and of those only the fewest whose
    probabilities add up to `cutoff_prob` (ctcdecode's cutoff_top_n / cutoff_prob); the rest get LOG_CLIP.

    Args:
        probs: (T', C) posteriors.
    Returns:
        (T', C) float32 log posteriors.
    """
    logp = np.log(np.clip(probs, 1e-15, 1.0)).astype(np.float32)
    if top_n >= probs.shape[1] and cutoff_prob >= 1.0:
        return logp
    order = np.argsort(-probs, axis=1)
    sorted_p = np.take_along_axis(probs, order, axis=1)
    before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the better labels
    keep_sorted = (np.arange(probs.shape[1]) < top_n)[None, :] & (before < cutoff_prob)
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    return np.where(keep, logp, np.float32(LOG_CLIP))


class BeamCTCDecoder:
    """pyctcdecode beam search with an optional n-gram LM, configured by LMConfig."""

    def __init__(self, labels: Sequence[str], lm: LMConfig, backend: str = "auto") -> None:
        pyctcdecode, _ = _import_pyctcdecode()
        self.labels = list(labels)
        self.config = lm
        language_model = None
        if lm.lm_path:
            scorer, unigrams = load_scorer(lm.lm_path, backend)
            if unigrams is None:
                logger.warning("%s is binary: no word list for partial-word scoring (pass the ARPA file)", lm.lm_path)
            language_model = make_language_model(scorer, unigrams, lm.alpha, lm.beta)
        alphabet = pyctcdecode.Alphabet.build_alphabet([*self.labels[:-1], ""])  # "" is pyctcdecode's blank
        self._decoder = pyctcdecode.BeamSearchDecoderCTC(alphabet, language_model)
        self.language_model = language_model

    def set_weights(self, alpha: float, beta: float) -> None:
        """New LM weights without reloading the LM (grid search)."""
        if self.language_model is None:
            raise ValueError("alpha/beta have no effect without a language model (LMConfig.lm_path)")
        self.language_model.reset_params(alpha=float(alpha), beta=float(beta))

    def hypothesis(self, probs: np.ndarray) -> Hypothesis:
        """Best beam of one utterance (probs (T', C), valid frames only), with pyctcdecode's word frames."""
        if len(probs) == 0:
            return Hypothesis("", [])
        logp = prune_frames(np.asarray(probs, dtype=np.float32), self.config.cutoff_top_n, self.config.cutoff_prob)
        text, _, word_frames, _, _ = self._decoder.decode_beams(logp, beam_width=self.config.beam_width)[0]
        return Hypothesis(text, [WordSpan(w, int(s), int(e)) for w, (s, e) in word_frames])

    def __call__(self, probs: np.ndarray, lengths: np.ndarray) -> list[str]:
        """DecodeFn: (n, T', C) posteriors and (n,) valid lengths -> n texts."""
        return [self.hypothesis(p[: int(n)]).text for p, n in zip(np.asarray(probs), np.asarray(lengths))]


def build_decoder(labels: Sequence[str], lm: LMConfig, backend: str = "auto") -> GreedyCTCDecoder | BeamCTCDecoder:
    """The decoder LMConfig asks for (validated first)."""
    validate_lm_config(lm)
    if lm.decoder_type == "greedy":
        return GreedyCTCDecoder(labels)
    return BeamCTCDecoder(labels, lm, backend)


# ------------------------------------------------------------------------------------------------ CLI and tuning
def add_decoder_args(parser: argparse.ArgumentParser) -> None:
    """--decoder/--lm_path/--alpha/--beta/--beam_width: shorthands for --set LMConfig.<key>=value."""
    group = parser.add_argument_group("decoding (LMConfig)")
    group.add_argument("--decoder", choices=DECODER_TYPES, default=None, help="default greedy")
    group.add_argument("--lm_path", default=None, help="n-gram LM: ARPA (.arpa, .arpa.gz) or KenLM binary")
    group.add_argument("--alpha", type=float, default=None, help="LM weight")
    group.add_argument("--beta", type=float, default=None, help="word insertion bonus")
    group.add_argument("--beam_width", type=int, default=None)


def decoder_overrides(args: argparse.Namespace) -> list[str]:
    """The decoding flags as `LMConfig.key=value` strings, to go before the user's --set (which wins)."""
    names = {"decoder": "decoder_type", "lm_path": "lm_path", "alpha": "alpha", "beta": "beta", "beam_width": None}
    out = []
    for flag, key in names.items():
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"LMConfig.{key or flag}={value}")
    if getattr(args, "lm_path", None) and getattr(args, "decoder", None) is None:
        out.append("LMConfig.decoder_type=beam")  # an LM only makes sense with beam search
    return out


@dataclass
class GridPoint:
    alpha: float
    beta: float
    result: EvalResult


def grid_search(
    decoder: BeamCTCDecoder,
    posteriors: Sequence[np.ndarray],
    references: Sequence[str],
    alphas: Sequence[float],
    betas: Sequence[float],
) -> list[GridPoint]:
    """Decode cached posteriors (each (T', C), valid frames) for every (alpha, beta) and score them."""
    if len(posteriors) != len(references):
        raise ValueError(f"{len(posteriors)} posteriors but {len(references)} references")
    metric = Decoder(decoder.labels)
    points = []
    for alpha in alphas:
        for beta in betas:
            decoder.set_weights(alpha, beta)
            result = EvalResult()
            for i, (probs, ref) in enumerate(zip(posteriors, references)):
                result.utterances.append(score(metric, ref, decoder.hypothesis(probs).text, str(i)))
            points.append(GridPoint(alpha, beta, result))
    return points
