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
    from src.cli import add_debug_arg
    from src.transcription import FORMATS, add_transcriber_args

    parser = argparse.ArgumentParser(description="DeepSpeech2 transcription of audio files")
    parser.add_argument("inputs", nargs="+", help="audio files and/or directories")
    parser.add_argument("--format", default="text", choices=FORMATS)
    parser.add_argument("--output_dir", default=None, help="write one file per input here (default: stdout)")
    parser.add_argument("--recursive", action="store_true", help="also look in subdirectories")
    parser.add_argument("--verbose", action="store_true", help="log progress on stderr")
    add_transcriber_args(parser)
    add_debug_arg(parser)
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    from src import transcription as T

    try:
        transcriber = T.build_transcriber(args)
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
