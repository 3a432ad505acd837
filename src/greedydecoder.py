"""MindSpore-facing greedy decoder: converts tensors to numpy, then delegates to deepspeech_pytorch.decoder."""

from __future__ import annotations

import numpy as np

from deepspeech_pytorch.decoder import GreedyDecoder


def _to_numpy(x) -> np.ndarray:
    return x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)


class MSGreedyDecoder(GreedyDecoder):
    """GreedyDecoder that accepts MindSpore tensors; `decode` returns (list of texts, list of frame offsets)."""

    def decode(self, probs, sizes=None):
        strings, offsets = super().decode(_to_numpy(probs), None if sizes is None else _to_numpy(sizes))
        return [s[0] for s in strings], [o[0] for o in offsets]
