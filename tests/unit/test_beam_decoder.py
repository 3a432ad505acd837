"""src/beam_decoder.py, src/greedydecoder.py and src/language_model.py without MindSpore: greedy word spans, pruning,
beam search with and without an n-gram LM on hand-made CTC posteriors, LM loading errors, the decoding flags
(src/cli.py), and the alpha/beta grid search (tools/tune_lm.py)."""

from __future__ import annotations

import argparse
import importlib
import sys

import numpy as np
import pytest

from src import beam_decoder as bd
from src import cli
from src import greedydecoder as gd
from src import language_model as lm
from src.config import LMConfig
from src.greedydecoder import MSGreedyDecoder
from src.ngram import build_kneser_ney
from tools.tune_lm import grid_search

pytest.importorskip("pyctcdecode")

LM_SENTENCES = ["THE CAT SAT", "THE CAT RAN", "A CAT SAT", "THE DOG SAT", "MY CAT IS BIG", "THE BIG CAT"]


def posterior(labels: list[str], frames: list[dict[str, float]]) -> np.ndarray:
    """(T, C) posteriors: each frame's listed labels get their probability, the rest share a small floor."""
    probs = np.full((len(frames), len(labels)), 1e-4, np.float32)
    for t, frame in enumerate(frames):
        for char, p in frame.items():
            probs[t, labels.index(char)] = p
    return probs / probs.sum(axis=1, keepdims=True)


def ambiguous(labels: list[str]) -> np.ndarray:
    """'THE KAT' by a hair at every frame, 'THE CAT' close behind: greedy picks the K."""
    frames = [{"T": 0.9}, {"_": 0.9}, {"H": 0.9}, {"E": 0.9}, {" ": 0.9}, {"K": 0.52, "C": 0.46}, {"A": 0.9}]
    return posterior(labels, [*frames, {"T": 0.9}, {"T": 0.9}, {"_": 0.9}])


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory) -> str:
    model = build_kneser_ney([s.split() for s in LM_SENTENCES], order=3)
    return str(model.write_arpa(tmp_path_factory.mktemp("lm") / "lm.arpa"))


def test_greedy_word_spans_from_a_hand_made_alignment(labels) -> None:
    # frames: H H _ I _ ' ' ' ' Y O O U _ -> "HI YOU"
    seq = ["H", "H", "_", "I", "_", " ", " ", "Y", "O", "O", "U", "_"]
    hyp = gd.greedy_hypothesis(posterior(labels, [{c: 0.99} for c in seq]), labels)
    assert hyp.text == "HI YOU"
    assert hyp.words == [gd.WordSpan("HI", 0, 4), gd.WordSpan("YOU", 7, 11)]


def test_greedy_repeats_need_a_blank_and_empty_input_is_empty(labels) -> None:
    hyp = gd.greedy_hypothesis(posterior(labels, [{c: 0.99} for c in "LL_L_ "]), labels)
    assert hyp.text == "LL" and hyp.words == [gd.WordSpan("LL", 0, 4)]
    assert gd.greedy_hypothesis(np.zeros((0, len(labels)), np.float32), labels) == gd.Hypothesis("", [])


def test_greedy_decode_fn_matches_eval_decoder(labels) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(len(labels), 0.3), size=(3, 20)).astype(np.float32)
    lengths = np.array([20, 13, 1])
    decoder = gd.GreedyCTCDecoder(labels)
    assert decoder(probs, lengths) == MSGreedyDecoder(labels, blank_index=len(labels) - 1).decode(probs, lengths)[0]
    for p, n in zip(probs, lengths):
        assert decoder.hypothesis(p[:n]).text.split() == decoder(p[None, :n], np.array([n]))[0].split()


def test_prune_frames_top_n_and_cumulative_cutoff() -> None:
    probs = np.array([[0.5, 0.3, 0.15, 0.05]], np.float32)
    assert np.array_equal(bd.prune_frames(probs, 40, 1.0), np.log(probs))
    kept = bd.prune_frames(probs, 2, 1.0) > bd.LOG_CLIP
    assert kept.tolist() == [[True, True, False, False]]
    kept = bd.prune_frames(probs, 40, 0.9) > bd.LOG_CLIP  # 0.5 + 0.3 < 0.9, so the third label stays
    assert kept.tolist() == [[True, True, True, False]]


def test_beam_without_lm_keeps_a_clear_posterior(labels) -> None:
    probs = posterior(labels, [{c: 0.95} for c in "HI_ THERE_"])
    decoder = bd.build_decoder(labels, LMConfig(decoder_type="beam", beam_width=8))
    assert decoder.hypothesis(probs).text == "HI THERE"
    assert decoder(probs[None], np.array([len(probs)])) == ["HI THERE"]


@pytest.mark.parametrize("backend", ["python", "kenlm"])
def test_lm_fixes_what_greedy_gets_wrong(labels, lm_path: str, backend: str) -> None:
    if backend == "kenlm":
        pytest.importorskip("kenlm")
    probs = ambiguous(labels)
    assert gd.greedy_hypothesis(probs, labels).text == "THE KAT"
    no_lm = bd.build_decoder(labels, LMConfig(decoder_type="beam", beam_width=16))
    assert no_lm.hypothesis(probs).text == "THE KAT"
    cfg = LMConfig(decoder_type="beam", lm_path=lm_path, alpha=0.5, beta=1.0, beam_width=16)
    hyp = bd.BeamCTCDecoder(labels, cfg, backend=backend).hypothesis(probs)
    assert hyp.text == "THE CAT"
    assert hyp.words == [gd.WordSpan("THE", 0, 4), gd.WordSpan("CAT", 5, 9)]


def test_set_weights_turns_the_lm_off_and_on(labels, lm_path: str) -> None:
    decoder = bd.BeamCTCDecoder(labels, LMConfig(decoder_type="beam", lm_path=lm_path, beam_width=16), "python")
    decoder.set_weights(0.0, 0.0)
    assert decoder.hypothesis(ambiguous(labels)).text == "THE KAT"
    decoder.set_weights(0.5, 1.0)
    assert decoder.hypothesis(ambiguous(labels)).text == "THE CAT"
    with pytest.raises(ValueError, match="without a language model"):
        bd.BeamCTCDecoder(labels, LMConfig(decoder_type="beam")).set_weights(1.0, 1.0)


def test_grid_search_scores_every_pair(labels, lm_path: str) -> None:
    decoder = bd.BeamCTCDecoder(labels, LMConfig(decoder_type="beam", lm_path=lm_path, beam_width=16), "python")
    points = grid_search(decoder, [ambiguous(labels)], ["THE CAT"], [0.0, 0.5], [1.0, 2.0])
    assert [(p.alpha, p.beta) for p in points] == [(0.0, 1.0), (0.0, 2.0), (0.5, 1.0), (0.5, 2.0)]
    assert [p.result.wer for p in points] == [0.5, 0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="references"):
        grid_search(decoder, [], ["X"], [0.0], [0.0])


@pytest.mark.parametrize(
    "cfg, error, message",
    [
        (LMConfig(decoder_type="viterbi"), ValueError, "decoder_type"),
        (LMConfig(decoder_type="beam", beam_width=0), ValueError, "beam_width"),
        (LMConfig(decoder_type="beam", cutoff_prob=0.0), ValueError, "cutoff_prob"),
        (LMConfig(lm_path="lm.arpa"), ValueError, "--decoder beam"),
        (LMConfig(decoder_type="beam", lm_path="/no/such/lm.arpa"), FileNotFoundError, "/no/such/lm.arpa"),
    ],
)
def test_bad_lm_config_is_rejected(labels, cfg: LMConfig, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        bd.build_decoder(labels, cfg)


def test_kenlm_binary_without_kenlm_says_what_to_do(tmp_path, monkeypatch) -> None:
    path = tmp_path / "lm.binary"
    path.write_bytes(lm.KENLM_MAGIC + b"http://kheafield.com/code search version 5\0")
    monkeypatch.setitem(sys.modules, "kenlm", None)  # import kenlm -> ImportError
    with pytest.raises(ImportError, match="pip install kenlm"):
        lm.load_scorer(path)
    with pytest.raises(ValueError, match="ARPA files only"):
        lm.load_scorer(path, backend="python")


def test_arpa_falls_back_to_python_without_kenlm(lm_path: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "kenlm", None)
    scorer, unigrams = lm.load_scorer(lm_path)
    assert type(scorer).__name__ == "ArpaModel" and "CAT" in unigrams


def test_flags_become_overrides_and_an_lm_implies_beam() -> None:
    parser = argparse.ArgumentParser()
    cli.add_decoder_args(parser)
    args = parser.parse_args(["--lm_path", "x.arpa", "--alpha", "0.7", "--beam_width", "8"])
    assert cli.decoder_overrides(args) == [
        "LMConfig.lm_path=x.arpa",
        "LMConfig.alpha=0.7",
        "LMConfig.beam_width=8",
        "LMConfig.decoder_type=beam",
    ]
    assert cli.decoder_overrides(parser.parse_args([])) == []


def test_eval_maps_its_flags_onto_lmconfig() -> None:

    eval_script = importlib.import_module("eval")
    argv = ["--pretrain_ckpt", "x.ckpt", "--decoder", "beam", "--beta", "1.5", "--set", "LMConfig.beta=2.0"]
    args = eval_script.parse_args(argv)  # an explicit --set wins over the shorthand
    cfg = cli.build_config(args, cli.EVAL_FLAGS, "x.ckpt")
    assert (cfg.LMConfig.decoder_type, cfg.LMConfig.beta) == ("beam", 2.0)
