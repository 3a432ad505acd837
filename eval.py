"""Evaluate a checkpoint: `python eval.py --pretrain_ckpt CKPT [--test_manifest CSV]` -> the lab's lines.

Exit status: 0, or 1 when clips could not be read and were skipped (unless --skip_invalid), 2 on a user error.
Decoding is greedy by default; `--decoder beam [--lm_path LM --alpha A --beta B --beam_width W]` (LMConfig) uses
beam search with an optional n-gram LM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from src.cli import entry_point


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DeepSpeech2 evaluation (WER/CER)")
    parser.add_argument("--pretrain_ckpt", required=True, help="checkpoint to evaluate")
    parser.add_argument("--test_manifest", default=None)
    parser.add_argument("--save_output", default=None, help="per-utterance results file (.csv or .json)")
    parser.add_argument("--quiet", action="store_true", help="only the summary line (no Ref/Hyp lines)")
    parser.add_argument(
        "--skip_invalid", action="store_true", help="skip invalid rows and unreadable clips and still exit 0"
    )
    from src.cli import add_common_args, add_decoder_args

    add_common_args(parser)
    add_decoder_args(parser)  # shorthands for --set LMConfig.*; an explicit --set still wins
    return parser.parse_args(argv)


def print_utterance(utt) -> None:
    """The lab's per-utterance lines."""
    print("Ref:", utt.reference.lower())
    print("Hyp:", utt.hypothesis.lower())
    print("WER:", utt.wer, "CER:", utt.cer, "\n", flush=True)


def report_skipped(failed: dict) -> None:
    """The clips that could not be read: count and names (they are not in the averages)."""
    names = sorted(failed)
    shown = ", ".join(names[:10]) + (f", ... ({len(names) - 10} more)" if len(names) > 10 else "")
    print(f"Skipped {len(names)} clips that could not be read (not in the averages): {shown}", flush=True)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from deepspeech_pytorch.decoder import Decoder
    from src.atomic import AtomicWriteError
    from src.beam_decoder import build_decoder
    from src.cli import build_eval_config, log_config
    from src.dataset import create_eval_dataset
    from src.evaluation import evaluate, write_results
    from src.inference import cell_predict_fn, load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    cfg = build_eval_config(args, args.pretrain_ckpt)
    cfg.verbose = cfg.verbose and not args.quiet
    cfg.DataConfig.skip_invalid = cfg.DataConfig.skip_invalid or args.skip_invalid
    log_config(cfg)
    set_context(cfg.device_target, args.device_id)
    d = cfg.DataConfig
    labels = load_labels(d.labels_path)
    data = create_eval_dataset(d, labels)
    decode = build_decoder(labels, cfg.LMConfig)
    _, cell = load_predictor(args.pretrain_ckpt, labels, d.SpectConfig, cfg.ModelConfig)
    predict = cell_predict_fn(cell, cfg.release_memory_on_new_shape)
    result = evaluate(predict, data, decode, Decoder(labels), print_utterance if cfg.verbose else None)
    # The summary comes first: a results file that cannot be written must not cost a finished evaluation.
    print(f"Test Summary \tAverage WER {result.wer * 100:.3f}\tAverage CER {result.cer * 100:.3f}\t", flush=True)
    if data.failed:
        report_skipped(data.failed)
    out = cfg.save_output or os.path.join(os.path.dirname(os.path.abspath(args.pretrain_ckpt)), "eval_results.csv")
    try:
        print(f"per-utterance results: {write_results(result, out)}")
    except AtomicWriteError as err:
        logging.getLogger("eval").error("per-utterance results not saved: %s", err)
    return 1 if data.failed and not d.skip_invalid else 0


if __name__ == "__main__":
    sys.exit(main())
