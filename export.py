"""Export a checkpoint: `python export.py --pre_trained_model_path CKPT [--file_format MINDIR|ONNX]`.

The exported file is loaded back and checked against the checkpoint's outputs before this reports success.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from src.cli import entry_point


def parse_args(argv=None) -> argparse.Namespace:
    from src.cli import add_debug_arg

    parser = argparse.ArgumentParser(description="DeepSpeech2 export to MindIR or ONNX")
    parser.add_argument("--pre_trained_model_path", required=True, help="checkpoint to export")
    parser.add_argument("--file_format", default="MINDIR", type=str.upper, choices=["MINDIR", "ONNX"])
    parser.add_argument("--file_name", default="deepspeech2", help="output path without suffix")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument(
        "--max_duration", type=float, default=35.0, help="seconds of audio the static input holds (default 35: the "
        "model zoo's 3501 frames; shorter clips are padded and masked, longer ones need transcribe.py's segments)"
    )  # fmt: skip
    parser.add_argument("--device_target", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--labels_path", default="labels.json")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value")
    add_debug_arg(parser)
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Refuse impossible shapes before MindSpore starts (a failed graph compile leaves dumps in ./rank_0/)."""
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be at least 1, got {args.batch_size}")
    if not math.isfinite(args.max_duration) or args.max_duration <= 1.0:
        raise ValueError(
            f"--max_duration must be a finite number of seconds above 1 (transcribe.py needs segments "
            f"longer than 1 s), got {args.max_duration}"
        )


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    os.environ.setdefault("GLOG_v", "3")
    from src import config as C
    from src import shapes
    from src.checkpoint import check_readable
    from src.exporting import example_inputs, export_file, verify_export
    from src.inference import load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    check_readable(args.pre_trained_model_path)
    spect, model = C.SpectConfig(), C.ModelConfig()
    C.load_run_model_config(args.pre_trained_model_path, spect, model)
    holder = C.EvalConfig(ModelConfig=model)
    holder.DataConfig.SpectConfig = spect
    C.apply_overrides(holder, args.set)
    C.validate_spect(spect)
    C.validate_model(model)
    labels = load_labels(C.resolve_path(args.labels_path))
    set_context(args.device_target)
    _, predict = load_predictor(args.pre_trained_model_path, labels, spect, model)
    frames = shapes.frames_for_seconds(args.max_duration, spect.sample_rate, spect.window_stride)
    features, lengths = example_inputs(args.batch_size, shapes.freq_bins(spect.sample_rate, spect.window_size), frames)
    path = export_file(predict, features, lengths, args.file_name, args.file_format)
    diff = verify_export(path, predict, features, lengths)
    print(
        f"exported {path} ({path.stat().st_size / 2**20:.1f} MiB), input (batch {args.batch_size}, 1, "
        f"{features.shape[2]}, {frames}); max |diff| vs checkpoint {diff:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
