"""Export a checkpoint: `python export.py --pre_trained_model_path CKPT [--file_format MINDIR|ONNX]`.

The exported file is loaded back and checked against the checkpoint's outputs before this reports success.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DeepSpeech2 export to MindIR or ONNX")
    parser.add_argument("--pre_trained_model_path", required=True, help="checkpoint to export")
    parser.add_argument("--file_format", default="MINDIR", type=str.upper, choices=["MINDIR", "ONNX"])
    parser.add_argument("--file_name", default="deepspeech2", help="output path without suffix")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--max_duration", type=float, default=None, help="seconds of audio the static input holds")
    parser.add_argument("--device_target", default="CPU", choices=["CPU", "GPU", "Ascend"])
    parser.add_argument("--labels_path", default="labels.json")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from src import config as C
    from src import shapes
    from src.exporting import example_inputs, export_file, verify_export
    from src.inference import load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    set_context(args.device_target)
    spect, model = C.SpectConfig(), C.ModelConfig()
    C.load_run_model_config(args.pre_trained_model_path, spect, model)
    holder = C.EvalConfig(ModelConfig=model)
    holder.DataConfig.SpectConfig = spect
    C.apply_overrides(holder, args.set)
    C.validate_spect(spect)
    labels = load_labels(C.resolve_path(args.labels_path))
    _, predict = load_predictor(args.pre_trained_model_path, labels, spect, model)
    seconds = shapes.DEFAULT_SEGMENT_SECONDS if args.max_duration is None else args.max_duration
    frames = shapes.frames_for_seconds(seconds, spect.sample_rate, spect.window_stride)
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
