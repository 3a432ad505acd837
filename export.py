"""Export a checkpoint: `python export.py --pre_trained_model_path CKPT [--file_format MINDIR|ONNX]`.

The exported file is loaded back and checked against the checkpoint's outputs before this reports success.
"""

from __future__ import annotations

import argparse
import os
import sys

from src.cli import add_debug_arg, entry_point


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DeepSpeech2 export to MindIR or ONNX")
    parser.add_argument("--pre_trained_model_path", required=True, help="checkpoint to export")
    parser.add_argument(
        "--file_format", default=None, type=str.upper, choices=["MINDIR", "ONNX"], help="default MINDIR"
    )
    parser.add_argument("--file_name", default=None, help="output path without suffix (default deepspeech2)")
    parser.add_argument("--batch_size", type=int, default=None, help="static batch of the input (default 1)")
    parser.add_argument(
        "--input_seconds", type=float, default=None, help="seconds of audio the static input holds (default 35: the "
        "model zoo's 3501 frames; shorter clips are padded and masked, longer ones need transcribe.py's segments)"
    )  # fmt: skip
    parser.add_argument("--device_target", default=None, choices=["CPU", "GPU", "Ascend"], help="default CPU")
    parser.add_argument("--labels_path", default=None, help="default labels.json")
    parser.add_argument("--config", default=None, help="JSON file of config values (same layout as config.json)")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value")
    add_debug_arg(parser)
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from src import shapes
    from src.checkpoint import check_readable
    from src.cli import EXPORT_FLAGS, build_inference_config
    from src.exporting import example_inputs, export_file, verify_export
    from src.inference import load_predictor
    from src.runtime import set_context, setup_logging
    from src.text import load_labels

    setup_logging()
    cfg = build_inference_config(args, args.pre_trained_model_path, EXPORT_FLAGS)  # before MindSpore starts
    check_readable(args.pre_trained_model_path)
    spect, e = cfg.DataConfig.SpectConfig, cfg.ExportConfig
    labels = load_labels(cfg.DataConfig.labels_path)
    set_context(cfg.device_target)
    _, predict = load_predictor(args.pre_trained_model_path, labels, spect, cfg.ModelConfig)
    frames = shapes.frames_for_seconds(e.input_seconds, spect.sample_rate, spect.window_stride)
    features, lengths = example_inputs(e.batch_size, shapes.freq_bins(spect.sample_rate, spect.window_size), frames)
    path = export_file(predict, features, lengths, e.file_name, e.file_format)
    diff = verify_export(path, predict, features, lengths)
    print(
        f"exported {path} ({path.stat().st_size / 2**20:.1f} MiB), input (batch {e.batch_size}, 1, "
        f"{features.shape[2]}, {frames}); max |diff| vs checkpoint {diff:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
