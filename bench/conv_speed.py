"""MindSpore nn.Conv2d vs the matmul convolution the network uses, side by side, forward and backward.

python bench/conv_speed.py [--batch 4] [--seconds 2.0] [--repeats 3]
Prints the time of each and the ratio, for both of DeepSpeech2's convolutions, plus the max difference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _timed(fn, *args, repeats: int) -> float:
    fn(*args)  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        fn(*args)
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0, help="audio length of each clip")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor, nn, ops

    from src.deepspeech2 import MatmulConv2d

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    frames = int(args.seconds * 100) + 1

    class TrainPass(nn.Cell):
        """Forward plus gradients w.r.t. weight and input of a loss that needs the output (as training does)."""

        def __init__(self, net):
            super().__init__()
            self.net, self.grad = net, ops.GradOperation(get_all=True, get_by_list=True)
            self.params = net.trainable_params()

        def construct(self, x):
            return self.grad(lambda y: (self.net(y) ** 2).sum(), self.params)(x)

    rows = [("conv", "pass", "nn.Conv2d s", "matmul s", "speed-up")]
    cases = [("conv1 41x11 /2x2", 1, (41, 11), (2, 2), 161 + 40, frames + 10),
             ("conv2 21x11 /2x1", 32, (21, 11), (2, 1), 81 + 20, (frames + 1) // 2 + 10)]  # fmt: skip
    for name, cin, kernel, stride, height, width in cases:
        ref = nn.Conv2d(cin, 32, kernel, stride, pad_mode="valid")
        ours = MatmulConv2d(cin, 32, kernel, stride)
        ours.weight.set_data(ref.weight.data)
        x = np.random.default_rng(0).standard_normal((args.batch, cin, height, width)).astype(np.float32)
        x_ref, x_ours = Tensor(x), Tensor(x.transpose(0, 3, 2, 1))  # ours is (N, T, F, C)
        diff = np.abs(ref(x_ref).asnumpy() - ours(x_ours).asnumpy().transpose(0, 3, 2, 1)).max()
        for label, a, b in (("forward", ref, ours), ("fwd + bwd", TrainPass(ref), TrainPass(ours))):
            t_ref = _timed(a, x_ref, repeats=args.repeats)
            t_ours = _timed(b, x_ours, repeats=args.repeats)
            rows.append((name, label, f"{t_ref:.4f}", f"{t_ours:.4f}", f"{t_ref / t_ours:.1f}x"))
        print(f"{name}: max |difference| {diff:.2e}")
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"batch {args.batch} x {args.seconds} s of audio, {args.repeats} repeats, CPU")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
