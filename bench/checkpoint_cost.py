"""What a full-size training checkpoint costs the step loop: blocking save vs background save, side by side.

python bench/checkpoint_cost.py [--dir DIR] [--scale 1.0] [--steps 20] [--repeats 3] [--window 30]

Builds parameters with the shapes of the full DeepSpeech2 training checkpoint (86.6 M weights + Adam's two
moments, about 1 GB of float32; the network itself is never built or run) and measures, on the disk holding DIR:
- the blocking save the step loop used to pay (write, streamed read-back check, fsync, rename);
- the background save: the time the step loop is held (the parameter copy) and the time until the file is in place;
- MindSpore's own `save_checkpoint(async_save=True)` call time, for comparison;
- the training time lost per checkpoint: steps of a small training step done in a fixed window with no save, with a
  background save and with a blocking save (the background write competes for the CPU; on 2 cores it shows);
- peak memory of the streamed checks (structure walk, sha256 sidecar) vs `mindspore.load_checkpoint`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HIDDEN, LAYERS, RNN_IN, LABELS = 1024, 5, 1312, 29


def training_checkpoint_shapes(scale: float = 1.0) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the full model's training checkpoint (weights and both Adam moments)."""
    h = max(1, int(HIDDEN * scale))
    net = {"conv.conv1.weight": (32, 1, 41, 11), "conv.conv2.weight": (32, 32, 21, 11), "fc.module.weight": (LABELS, h)}
    for layer in range(LAYERS):
        for suffix in ("", "_reverse"):
            net[f"RNN.lstms.{layer}.weight_ih_l0{suffix}"] = (4 * h, RNN_IN if layer == 0 else h)
            net[f"RNN.lstms.{layer}.weight_hh_l0{suffix}"] = (4 * h, h)
            net[f"RNN.lstms.{layer}.bias_ih_l0{suffix}"] = (4 * h,)
            net[f"RNN.lstms.{layer}.bias_hh_l0{suffix}"] = (4 * h,)
    shapes = dict(net)
    for moment in ("moment1", "moment2"):
        shapes.update({f"{moment}.{name}": shape for name, shape in net.items()})
    return shapes


def peak_rss_mb_during(fn) -> tuple[float, float]:
    """(seconds, peak resident memory above the starting point in MB) of fn(), sampled every 5 ms."""

    def rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    base, peak, done = rss(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss() - base)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    done.set()
    thread.join()
    return seconds, max(peak[0], rss() - base)


def small_step(labels):
    """A compiled training step of a small DeepSpeech2 (hidden 64 x 1, one clip of 1 s): the CPU load to disturb."""
    import numpy as np
    from mindspore import Tensor

    from src.deepspeech2 import DeepSpeechModel, NetWithLossClass
    from src.train_step import TrainOneStep, build_optimizer

    net = DeepSpeechModel(labels, 64, 1)
    cell = TrainOneStep(NetWithLossClass(net, 28), build_optimizer(net, 1e-3, (0.9, 0.999), 1e-8, 0.0), 1.0, 0.0)
    cell.set_train()
    rng = np.random.default_rng(0)
    batch = (
        Tensor(rng.standard_normal((1, 1, 161, 101)).astype(np.float32)),
        Tensor(np.full(1, 101, np.int32)),
        Tensor(rng.integers(0, 28, (1, 10)).astype(np.int32)),
        Tensor(np.full(1, 10, np.int32)),
    )

    def step() -> float:
        started = time.perf_counter()
        cell(*batch)[0].asnumpy()
        return time.perf_counter() - started

    step()  # compile
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".", help="where the checkpoints are written (use the run disk)")
    parser.add_argument("--scale", type=float, default=1.0, help="hidden size factor (1.0: the full 1 GB)")
    parser.add_argument("--steps", type=int, default=20, help="small training steps timed alone")
    parser.add_argument("--repeats", type=int, default=3, help="saves of each kind")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of training per contention run")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import json

    import mindspore as ms
    import numpy as np
    from mindspore import Parameter, Tensor

    from src.callback import CheckpointSaver
    from src.checkpoint import check_structure, save_atomic
    from src.digest import check_digest

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")

    class Bag:
        """The parameters of a training checkpoint; `get_parameters` is all the saver needs from a cell."""

        def __init__(self, shapes):
            rng = np.random.default_rng(0)
            self.params = [
                Parameter(Tensor(rng.standard_normal(s, dtype=np.float32)), name=n) for n, s in shapes.items()
            ]
            self.entries = [{"name": p.name, "data": p} for p in self.params]

        def get_parameters(self):
            return iter(self.params)

    bag = Bag(training_checkpoint_shapes(args.scale))
    size_gb = sum(p.asnumpy().nbytes for p in bag.params) / 1e9
    print(f"checkpoint: {len(bag.params)} tensors, {size_gb:.2f} GB float32")
    work = Path(tempfile.mkdtemp(prefix="ckpt_bench_", dir=args.dir))
    try:
        state = {"epoch_num": 0, "step_num": 5, "global_step_num": 5}

        blocking, held, finished = [], [], []
        saver = CheckpointSaver(work, "DeepSpeech", 2, every_steps=5)
        for i in range(args.repeats):
            t0 = time.perf_counter()
            save_atomic(bag.entries, work / "sync.ckpt", append_dict=state)
            blocking.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            saver.save_in_background(bag, 0, i, i + 1)
            held.append(time.perf_counter() - t0)
            saver.wait()
            finished.append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in (("b", blocking), ("h", held), ("f", finished))}
        print(f"blocking save (write + streamed check + fsync + rename + sha256 sidecar), {args.repeats} runs: "
              f"median {med['b']:.2f} s, max {max(blocking):.2f} s held in the step loop")  # fmt: skip
        print(f"background save: step loop held median {med['h']:.2f} s, max {max(held):.2f} s (parameter copy); "
              f"file in place after median {med['f']:.2f} s")  # fmt: skip
        print(f"  -> the step loop waits {med['h'] / med['b']:.1%} of the blocking save")

        t0 = time.perf_counter()
        ms.save_checkpoint(bag.entries, str(work / "ms_async.ckpt"), async_save=True)
        ms_held = time.perf_counter() - t0
        print(f"mindspore save_checkpoint(async_save=True): call returned after {ms_held:.2f} s (no check, no rename)")

        step = small_step(json.loads((Path(__file__).resolve().parent.parent / "labels.json").read_text()))
        step_s = float(np.median([step() for _ in range(args.steps)]))

        def steps_in_window(save) -> int:
            """Training steps completed in a fixed window that starts with `save()` (None: no save)."""
            started, done = time.perf_counter(), 0
            if save is not None:
                save()
            while time.perf_counter() - started < args.window:
                step()
                done += 1
            saver.wait()
            return done

        runs = {"none": [], "background": [], "blocking": []}
        for i in range(args.repeats):
            runs["none"].append(steps_in_window(None))
            runs["background"].append(steps_in_window(lambda i=i: saver.save_in_background(bag, 1, i, 100 + i)))
            runs["blocking"].append(steps_in_window(lambda: save_atomic(bag.entries, work / "sync.ckpt", state)))
        saver.close()
        n = {k: float(np.median(v)) for k, v in runs.items()}
        lost = {k: (n["none"] - n[k]) * args.window / n["none"] for k in ("background", "blocking")}
        print(f"training progress in a {args.window:.0f} s window (small step {step_s * 1000:.0f} ms; median of "
              f"{args.repeats}): {n['none']:.0f} steps without a save, {n['background']:.0f} with a background save, "
              f"{n['blocking']:.0f} with a blocking save")  # fmt: skip
        print(f"training time lost per 1 GB checkpoint: background {lost['background']:.1f} s, "
              f"blocking {lost['blocking']:.1f} s")  # fmt: skip
        for label, interval in (("every 60 s", 60.0), ("every 300 s (the default clock)", 300.0)):
            print(f"  overhead at a checkpoint {label}: background {lost['background'] / interval:.1%}, "
                  f"blocking {lost['blocking'] / interval:.1%}")  # fmt: skip

        newest = saver.written[-1]
        v_s, v_mb = peak_rss_mb_during(lambda: check_structure(newest))
        print(f"post-save check: streamed structure walk {v_s:.2f} s, +{v_mb:.0f} MB peak")
        d_s, d_mb = peak_rss_mb_during(lambda: check_digest(newest))
        print(f"load-time check: streamed sha256 against the sidecar {d_s:.2f} s, +{d_mb:.0f} MB peak")
        try:
            l_s, l_mb = peak_rss_mb_during(lambda: ms.load_checkpoint(str(newest)))
            print(f"  mindspore.load_checkpoint for comparison: {l_s:.2f} s, +{l_mb:.0f} MB peak")
        except (RuntimeError, ValueError, MemoryError) as err:  # MindSpore refuses a file larger than free memory
            print(f"  mindspore.load_checkpoint for comparison: refused ({str(err).splitlines()[0][:160]})")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
