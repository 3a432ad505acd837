"""Beam-search CTC decoding (pyctcdecode) with an optional n-gram LM, and `build_decoder` for LMConfig.

No MindSpore import: everything here works on numpy posteriors. Both decoders `build_decoder` returns are
`DecodeFn`s for `src.evaluation.evaluate` (`decoder(probs (n, T', C), lengths (n,))` -> texts) and give
`hypothesis(probs (T', C))` -> text plus word spans for transcription. Greedy decoding lives in
src/greedydecoder.py, the LM adapters in src/language_model.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from src.config import LMConfig, validate_lm
from src.greedydecoder import GreedyCTCDecoder, Hypothesis, WordSpan
from src.language_model import import_pyctcdecode, load_scorer, make_language_model

logger = logging.getLogger(__name__)

LOG_CLIP = math.log(1e-15)  # pyctcdecode's floor for log probabilities


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
        pyctcdecode, _ = import_pyctcdecode()
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
    validate_lm(lm)
    if lm.decoder_type == "greedy":
        return GreedyCTCDecoder(labels)
    return BeamCTCDecoder(labels, lm, backend)
