"""Train DeepSpeech2: `python train.py [--pre_trained_model_path CKPT] [--train_manifest CSV] [--set K=V ...]`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from src.cli import entry_point


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DeepSpeech2 training")
    parser.add_argument("--pre_trained_model_path", default="", help="checkpoint to start from (net or training)")
    parser.add_argument("--train_manifest", default=None)
    parser.add_argument("--val_manifest", default=None, help="validation manifest (per-epoch WER, best checkpoint)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--micro_batch_seconds",
        type=float,
        default=None,
        help="split batches past this many padded audio seconds into micro-batches, one update (default 70; 0: off)",
    )
    parser.add_argument("--save_dir", default=None, help="run directory: checkpoints, logs, config.json, curves")
    parser.add_argument("--is_distributed", action="store_true", help="data-parallel run under msrun")
    parser.add_argument("--resume", default="", help="training checkpoint, or a run directory (newest good one)")
    parser.add_argument("--overwrite", action="store_true", help="replace another run's checkpoints in --save_dir")
    from src.cli import add_common_args

    add_common_args(parser)
    return parser.parse_args(argv)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from src import config as C
    from src.cli import build_train_config, log_config, prepare_resume
    from src.rundir import check_ownership, claim_run_dir
    from src.runtime import set_context, setup_logging

    resume = prepare_resume(args)  # every input is checked before anything in the run directory is written
    cfg = build_train_config(args)
    run_dir = cfg.CheckpointConfig.ckpt_path
    check_ownership(run_dir, bool(resume), args.overwrite)
    rank, world, make_reducer = 0, 1, None
    set_context(cfg.device_target, args.device_id)
    if args.is_distributed:
        from src.distributed import init_data_parallel

        rank, world, make_reducer = init_data_parallel()
    with claim_run_dir(run_dir, bool(resume), args.overwrite) if rank == 0 else contextlib.nullcontext():
        setup_logging(os.path.join(run_dir, "train.log") if rank == 0 else None, rank)
        log_config(cfg)
        from src.trainer import Trainer

        trainer = Trainer(cfg, args.pre_trained_model_path, rank, world, make_reducer)  # manifests validated here
        if resume:
            trainer.resume(*resume)
        if rank == 0:  # written once the data, the weights and the resume point have all been accepted
            C.save_config(cfg, run_dir)
        summary = trainer.run()
    print(
        f"training finished: {summary.steps} steps, {summary.skipped_steps} skipped, last loss {summary.last_loss:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
