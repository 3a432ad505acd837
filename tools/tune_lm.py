"""Grid search for the LM weights: run the network once over a dev manifest, then beam-decode the cached
posteriors for every (alpha, beta) and print the table and the best pair (lowest WER, then CER).

    python tools/tune_lm.py --pretrain_ckpt CKPT --dev_manifest data/libri_val_manifest.csv --lm_path LM \
        --alphas 0,0.5,1,1.5,2 --betas 0,1,2 [--beam_width 32] [--output tuning.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepspeech_pytorch.decoder import Decoder
from src.cli import add_common_args, build_eval_config
from src.evaluation import EvalResult, score


def float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tune the LM weight alpha and word bonus beta on a dev set")
    parser.add_argument("--pretrain_ckpt", required=True, help="checkpoint (config.json of its run next to it)")
    parser.add_argument("--dev_manifest", required=True, help="manifest to tune on (never the test set)")
    parser.add_argument("--lm_path", required=True, help="ARPA (.arpa, .arpa.gz) or KenLM binary")
    parser.add_argument("--alphas", type=float_list, default=float_list("0,0.5,1,1.5,2,2.5"))
    parser.add_argument("--betas", type=float_list, default=float_list("0,0.5,1,2,3"))
    parser.add_argument("--beam_width", type=int, default=None, help="default LMConfig.beam_width")
    parser.add_argument("--output", default=None, help="also write the table as CSV here")
    add_common_args(parser)
    return parser.parse_args(argv)


@dataclass
class GridPoint:
    alpha: float
    beta: float
    result: EvalResult


def grid_search(
    decoder,
    posteriors: Sequence[np.ndarray],
    references: Sequence[str],
    alphas: Sequence[float],
    betas: Sequence[float],
) -> list[GridPoint]:
    """Decode cached posteriors (each (T', C), valid frames) for every (alpha, beta) and score them.

    Args:
        decoder: a BeamCTCDecoder with a language model (its weights are reset for every pair).
    """
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


def cache_posteriors(predict, dataset) -> tuple[list, list[str]]:
    """Run every utterance through `predict` once: posteriors (T', C) of the valid frames and references."""
    posteriors, references = [], []
    for _, batch in dataset.iterate(0):
        probs, lengths = predict(batch.features, batch.lengths)
        for i in range(batch.size):
            posteriors.append(np.asarray(probs[i, : int(lengths[i])], dtype=np.float32))
            references.append(batch.texts[i])
    return posteriors, references


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from src.beam_decoder import BeamCTCDecoder
    from src.dataset import create_eval_dataset
    from src.inference import cell_predict_fn, load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    args.test_manifest = args.dev_manifest  # --lm_path and --beam_width are the decoder flags: LMConfig, beam
    cfg = build_eval_config(args, args.pretrain_ckpt)
    set_context(cfg.device_target, args.device_id)
    d = cfg.DataConfig
    labels = load_labels(d.labels_path)
    decoder = BeamCTCDecoder(labels, cfg.LMConfig)
    data = create_eval_dataset(d, labels, segment_seconds=0.0)  # posteriors are cached per whole clip
    _, cell = load_predictor(args.pretrain_ckpt, labels, d.SpectConfig, cfg.ModelConfig)
    posteriors, references = cache_posteriors(cell_predict_fn(cell), data)
    rows = [
        (p.alpha, p.beta, p.result.wer * 100, p.result.cer * 100)
        for p in grid_search(decoder, posteriors, references, args.alphas, args.betas)
    ]
    print(f"{'alpha':>6} {'beta':>6} {'WER':>8} {'CER':>8}   ({len(references)} utterances)")
    for alpha, beta, wer, cer in rows:
        print(f"{alpha:6.2f} {beta:6.2f} {wer:8.3f} {cer:8.3f}")
    best = min(rows, key=lambda r: (r[2], r[3]))
    print(f"best: --alpha {best[0]:g} --beta {best[1]:g} (WER {best[2]:.3f}, CER {best[3]:.3f})")
    if args.output:
        from src.atomic import write_text

        buf = io.StringIO()
        csv.writer(buf).writerows([("alpha", "beta", "wer", "cer"), *rows])
        write_text(args.output, buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
