"""Evaluate a checkpoint: `python eval.py --pretrain_ckpt CKPT [--test_manifest CSV]` -> the lab's lines."""

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
    from src.cli import add_common_args

    add_common_args(parser)
    return parser.parse_args(argv)


def print_utterance(utt) -> None:
    """The lab's per-utterance lines."""
    print("Ref:", utt.reference.lower())
    print("Hyp:", utt.hypothesis.lower())
    print("WER:", utt.wer, "CER:", utt.cer, "\n", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from src.cli import build_eval_config, log_config
    from src.dataset import create_dataset
    from src.evaluation import write_results
    from src.inference import evaluate_network, load_predictor
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
    net, _ = load_predictor(args.pretrain_ckpt, labels, d.SpectConfig, cfg.ModelConfig)
    result = evaluate_network(net, data, labels, print_utterance if cfg.verbose else None)
    if cfg.save_output:
        print(f"per-utterance results: {write_results(result, cfg.save_output)}")
    print(f"Test Summary \tAverage WER {result.wer * 100:.3f}\tAverage CER {result.cer * 100:.3f}\t")
    return 0


if __name__ == "__main__":
    sys.exit(main())
