"""Transcribe audio: `python transcribe.py --model_path MODEL FILE_OR_DIR ... [--format text|json|srt]`.

MODEL: a checkpoint (its run's config.json next to it), an exported .mindir or .onnx file. Errors are reported per
file on stderr and the other files still run. Exit status: 0 all transcribed, 1 a file failed, 2 bad options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from src.cli import entry_point


def parse_args(argv=None) -> argparse.Namespace:
    from src.beam_decoder import add_decoder_args
    from src.cli import add_debug_arg
    from src.transcription import FORMATS

    parser = argparse.ArgumentParser(description="DeepSpeech2 transcription of audio files")
    parser.add_argument("inputs", nargs="+", help="audio files and/or directories")
    parser.add_argument("--model_path", required=True, help=".ckpt, .mindir or .onnx")
    parser.add_argument("--format", default="text", choices=FORMATS)
    parser.add_argument("--output_dir", default=None, help="write one file per input here (default: stdout)")
    parser.add_argument("--segment_seconds", type=float, default=15.0, help="longest piece the model sees at once")
    parser.add_argument("--frames", type=int, default=0, help="static input frames of an exported model (if unread)")
    parser.add_argument("--recursive", action="store_true", help="also look in subdirectories")
    parser.add_argument("--device_target", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--labels_path", default="labels.json")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value")
    parser.add_argument("--verbose", action="store_true", help="log progress on stderr")
    add_decoder_args(parser)
    add_debug_arg(parser)
    return parser.parse_args(argv)


def build_transcriber(args: argparse.Namespace):
    """Config (the run's config.json next to a checkpoint, flags, --set), decoder and model -> Transcriber."""
    from src import config as C
    from src import transcription as T
    from src.beam_decoder import build_decoder, decoder_overrides
    from src.cli import log_config
    from src.text import load_labels

    T.check_segment_seconds(args.segment_seconds)  # before the model is loaded
    cfg = C.EvalConfig()
    C.load_run_model_config(args.model_path, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    C.apply_overrides(cfg, decoder_overrides(args) + args.set)
    spect = cfg.DataConfig.SpectConfig
    C.validate_spect(spect)
    C.validate_model(cfg.ModelConfig)
    log_config(cfg)
    labels = load_labels(C.resolve_path(args.labels_path))
    decoder = build_decoder(labels, cfg.LMConfig)
    model = T.load_segment_predictor(args.model_path, labels, spect, cfg.ModelConfig, args.frames, args.device_target)
    return T.Transcriber(model, decoder, spect, args.segment_seconds)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    from src import transcription as T

    try:
        transcriber = build_transcriber(args)
    except ImportError as err:  # an optional decoder package (pyctcdecode, kenlm) is missing
        print(f"error: {err}", file=sys.stderr)
        return 2
    files, notes = T.expand_inputs(args.inputs, args.recursive)
    for note in notes:
        print(note, file=sys.stderr)
    if not files:
        print("ERROR no audio files found in the given inputs", file=sys.stderr)
        return 1
    writer = T.OutputWriter(args.format, args.output_dir, several=len(files) > 1)
    report = T.transcribe_files(transcriber, files, writer, lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"transcribed {len(report.done)} of {len(files)} files, {len(report.failed)} failed", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
