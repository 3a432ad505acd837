"""Inference plumbing shared by eval.py, transcribe.py, export.py and validation: build, load, predict, decode."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
from mindspore import Tensor

from deepspeech_pytorch.decoder import Decoder
from src import config as C
from src.checkpoint import load_network_weights
from src.deepspeech2 import PredictWithSoftmax, build_network
from src.evaluation import EvalResult, evaluate
from src.greedydecoder import GreedyCTCDecoder
from src.runtime import release_runtime_memory

logger = logging.getLogger(__name__)


def load_predictor(ckpt: str, labels: list[str], spect: C.SpectConfig, model: C.ModelConfig):
    """Network in eval mode with the checkpoint's weights, wrapped in PredictWithSoftmax.

    Returns:
        (network, predict cell).
    """
    # Inference never trains: MindSpore's LSTM kernels only (no kernel build, no compiler needed).
    net = build_network(labels, spect, dataclasses.replace(model, lstm_kernel="mindspore"))
    report = load_network_weights(net, ckpt)
    logger.info("loaded %d tensors from %s", report.loaded, ckpt)
    net.set_train(False)
    return net, PredictWithSoftmax(net)


def cell_predict_fn(cell, release_on_new_shape: bool = False):
    """numpy-in/numpy-out predict function over a MindSpore cell (features (N,1,F,T), lengths (N,)).

    Args:
        release_on_new_shape: hand MindSpore's cached runtime memory back when the input shape changes. Each
            shape runs its own graph and MindSpore keeps every graph's memory, so RSS would grow with every new
            length; the next call re-allocates (seconds), which pays when shapes come in runs (evaluation in
            order of duration), not for live decoding whose shape changes at every call.
    """
    last: list[tuple | None] = [None]

    def predict(features: np.ndarray, lengths: np.ndarray):
        if release_on_new_shape and last[0] not in (None, features.shape):
            release_runtime_memory()
        last[0] = features.shape
        probs, out_lengths = cell(Tensor(features), Tensor(lengths.astype(np.int32)))
        return probs.asnumpy(), out_lengths.asnumpy()

    return predict


def evaluate_network(net, dataset, labels: list[str], on_utterance=None) -> EvalResult:
    """Greedy evaluation of a network (in whatever train/eval mode the caller set)."""
    predict = cell_predict_fn(PredictWithSoftmax(net))
    return evaluate(predict, dataset, GreedyCTCDecoder(labels), Decoder(labels), on_utterance)
