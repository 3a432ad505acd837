"""Evaluate a checkpoint: `python eval.py --pretrain_ckpt CKPT [--test_manifest CSV]` -> the lab's lines.

Decoding is greedy by default; `--decoder beam [--lm_path LM --alpha A --beta B --beam_width W]` (LMConfig) uses
beam search with an optional n-gram LM.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DeepSpeech2 evaluation (WER/CER)")
    parser.add_argument("--pretrain_ckpt", required=True, help="checkpoint to evaluate")
    parser.add_argument("--test_manifest", default=None)
    parser.add_argument("--save_output", default=None, help="per-utterance results file (.csv or .json)")
    parser.add_argument("--quiet", action="store_true", help="only the summary line (no Ref/Hyp lines)")
    from src.cli import add_common_args, add_decoder_args, decoder_overrides

    add_common_args(parser)
    add_decoder_args(parser)
    args = parser.parse_args(argv)
    args.set = decoder_overrides(args) + args.set  # the flags are shorthands; an explicit --set still wins
    return args


def print_utterance(utt) -> None:
    """The lab's per-utterance lines."""
    print("Ref:", utt.reference.lower())
    print("Hyp:", utt.hypothesis.lower())
    print("WER:", utt.wer, "CER:", utt.cer, "\n", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from deepspeech_pytorch.decoder import Decoder
    from src.beam_decoder import build_decoder
    from src.cli import build_eval_config, log_config
    from src.dataset import create_dataset
    from src.evaluation import evaluate, write_results
    from src.inference import cell_predict_fn, load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    cfg = build_eval_config(args, args.pretrain_ckpt)
    if args.save_output:
        cfg.save_output = args.save_output
    if args.quiet:
        cfg.verbose = False
    log_config(cfg)
    set_context(cfg.device_target, args.device_id)
    d = cfg.DataConfig
    labels = load_labels(d.labels_path)
    data = create_dataset(d.test_manifest, labels, d.SpectConfig, d.batch_size, False, num_workers=d.num_workers)
    decode = build_decoder(labels, cfg.LMConfig)
    _, cell = load_predictor(args.pretrain_ckpt, labels, d.SpectConfig, cfg.ModelConfig)
    result = evaluate(cell_predict_fn(cell), data, decode, Decoder(labels), print_utterance if cfg.verbose else None)
    out = cfg.save_output or os.path.join(os.path.dirname(os.path.abspath(args.pretrain_ckpt)), "eval_results.csv")
    print(f"per-utterance results: {write_results(result, out)}")
    print(f"Test Summary \tAverage WER {result.wer * 100:.3f}\tAverage CER {result.cer * 100:.3f}\t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
