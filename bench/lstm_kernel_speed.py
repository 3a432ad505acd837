"""The project's LSTM kernel alone (src/kernels/lstm_cpu.cc): one direction's forward and backward, per build.

Usage:
    python bench/lstm_kernel_speed.py [--frames 500] [--clips 4] [--hidden 1024] [--input 1024] [--repeats 3]
                                      [--march native,x86-64-v3] [--baseline REV]

One command, one run: it builds the kernel once per `--march` (native: what training builds; x86-64-v3: the
AVX2 build a Zen 3 host gets, which runs on any AVX-512 host too), and with `--baseline REV` also the kernel
source of that git revision with the same flags, then calls every build's LstmForward and LstmBackward directly
(ctypes, no MindSpore graph) on the same random data: `--clips` clips of `--frames` frames (500 frames: 10 s of
audio after the convolutions; 4 clips: a 70 s micro-batch of them). It prints the host's SIMD flags and, per
build, the best of `--repeats` times of each pass, its GFLOP/s (the products' multiply-adds: forward
2TN*4H*(I+H), backward 2TN*4H*(2I+2H)), the speed-up over the baseline build of the same flags, and the largest
difference of its outputs and gradients from the first build's, relative to each array's largest value (a
different -march or summation order rounds differently: ~1e-6; anything near 1 is a wrong result).
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.train_speed import cpu_info  # noqa: E402
from src import lstm_kernel  # noqa: E402


def _call(lib: ctypes.CDLL, name: str, arrays: list[np.ndarray]) -> None:
    """One aot entry point: (nparam, params, ndims, shapes, dtypes, stream, extra), inputs then outputs."""
    n = len(arrays)
    shapes = [(ctypes.c_int64 * max(a.ndim, 1))(*a.shape) for a in arrays]
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    rc = fn(
        n,
        (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays]),
        (ctypes.c_int * n)(*[a.ndim for a in arrays]),
        (ctypes.POINTER(ctypes.c_int64) * n)(*[ctypes.cast(s, ctypes.POINTER(ctypes.c_int64)) for s in shapes]),
        (ctypes.c_char_p * n)(*[b"float32"] * n),
        None,
        None,
    )
    if rc != 0:
        raise RuntimeError(f"{name} returned {rc} (shapes {[a.shape for a in arrays]})")


def make_data(frames: int, clips: int, inputs: int, hidden: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(hidden)  # nn.LSTM's initialisation range

    def uniform(*shape, s=1.0):
        return rng.uniform(-s, s, shape).astype(np.float32)

    return {
        "x": uniform(frames, clips, inputs),
        "w_ih": uniform(4 * hidden, inputs, s=scale),
        "w_hh": uniform(4 * hidden, hidden, s=scale),
        "b": uniform(4 * hidden, s=scale),
        "dy": uniform(frames, clips, hidden),
    }


def run_build(path: Path, data: dict, repeats: int) -> dict:
    """Best forward and backward times of the library at `path`, and its outputs."""
    lib = ctypes.CDLL(str(path))
    t, n, _ = data["x"].shape
    h = data["w_hh"].shape[1]
    y = np.empty((t, n, h), np.float32)
    gates = np.empty((t, n, 4 * h), np.float32)
    dx = np.empty_like(data["x"])
    dw_ih, dw_hh, db = np.empty_like(data["w_ih"]), np.empty_like(data["w_hh"]), np.empty_like(data["b"])
    forward, backward = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        _call(lib, "LstmForward", [data["x"], data["w_ih"], data["w_hh"], data["b"], y, gates])
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        _call(lib, "LstmBackward", [data["x"], data["w_ih"], data["w_hh"], gates, data["dy"], dx, dw_ih, dw_hh, db])
        backward.append(time.perf_counter() - start)
    outputs = {"y": y, "dx": dx, "dw_ih": dw_ih, "dw_hh": dw_hh, "db": db}
    return {"forward_s": min(forward), "backward_s": min(backward), "outputs": outputs}


def flops(frames: int, clips: int, inputs: int, hidden: int) -> tuple[float, float]:
    rows, gates = frames * clips, 4 * hidden
    return 2.0 * rows * gates * (inputs + hidden), 2.0 * rows * gates * (2 * inputs + 2 * hidden)


def largest_difference(a: dict, b: dict) -> float:
    """max over arrays of max|a - b| / max|a|."""
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(a[k]).max(), 1e-30)) for k in a)


def baseline_source(rev: str, folder: Path) -> Path:
    """lstm_cpu.cc as it was at git revision `rev`, written into `folder`."""
    text = subprocess.run(
        ["git", "show", f"{rev}:src/kernels/lstm_cpu.cc"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "lstm_cpu.cc"
    path.write_text(text)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=500, help="time steps (500: 10 s after the convolutions)")
    parser.add_argument("--clips", type=int, default=4, help="clips per call (4: a 70 s micro-batch of 10 s clips)")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--input", type=int, default=1024, help="input features (1024; layer 0 has 1312)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--march", default="native,x86-64-v3", help="comma-separated -march values to build")
    parser.add_argument("--baseline", default=None, help="also build lstm_cpu.cc of this git revision")
    args = parser.parse_args(argv)
    args.march_list = [m.strip() for m in args.march.split(",") if m.strip()]
    if not args.march_list or min(args.frames, args.clips, args.hidden, args.input, args.repeats) < 1:
        parser.error("--march needs a value; --frames, --clips, --hidden, --input, --repeats must be >= 1")
    return args


def measure(args: argparse.Namespace) -> list[dict]:
    """Build every variant and time it: [{march, source, forward_s, backward_s, outputs, difference}]."""
    data = make_data(args.frames, args.clips, args.input, args.hidden)
    results, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"current": lstm_kernel.SOURCE}
        if args.baseline:
            sources[args.baseline] = baseline_source(args.baseline, Path(tmp))
        for march in args.march_list:
            for label, source in sources.items():
                try:
                    path = lstm_kernel.build(Path(tmp) / "builds", (f"-march={march}",), source)
                except lstm_kernel.KernelUnavailable as err:
                    print(f"{label} -march={march}: not built: {err}")
                    continue
                done = run_build(path, data, args.repeats)
                reference = reference or done["outputs"]
                done["difference"] = largest_difference(reference, done["outputs"])
                results.append({"march": march, "source": label, **done})
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = cpu_info()
    flags = ", ".join(name for name, present in host["flags"].items() if present) or "none of AVX2/AVX-512/AMX"
    print(f"host: {host['cpu']}, {host['usable_cpus']} usable CPUs, {flags}")
    print(f"one direction: {args.frames} frames x {args.clips} clips, input {args.input}, hidden {args.hidden}")
    results = measure(args)
    if not results:
        return 2
    fwd_flop, bwd_flop = flops(args.frames, args.clips, args.input, args.hidden)
    print(f"{'build':<32} {'forward':>14} {'backward':>15} {'vs baseline':>12} {'difference':>11}")
    for r in results:
        base = next((b for b in results if b["march"] == r["march"] and b["source"] == args.baseline), None)
        total = r["forward_s"] + r["backward_s"]
        speedup = "-" if base is None or base is r else f"x{(base['forward_s'] + base['backward_s']) / total:.2f}"
        print(
            f"{r['source'] + ' -march=' + r['march']:<32} "
            f"{r['forward_s'] * 1e3:7.1f} ms {fwd_flop / r['forward_s'] / 1e9:4.0f} GF/s "
            f"{r['backward_s'] * 1e3:7.1f} ms {bwd_flop / r['backward_s'] / 1e9:4.0f} GF/s "
            f"{speedup:>11} {r['difference']:11.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
