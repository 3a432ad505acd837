"""Evaluation speed and memory: the project's eval path, its ONNX export under onnxruntime, and PyTorch.

Usage:
    python bench/eval_speed.py [--hidden 1024] [--layers 5] [--clips 20] [--min_seconds 5] [--max_seconds 15]
                               [--batches 20,1] [--only project|onnx|torch] [--threads N] [--timeout_s S]
                               [--mem_limit_gb G] [--keep_memory] [--history FILE]

One command, one run. It prints the host (CPU model, cores, AVX2 / AVX-512 / AVX512_BF16 / AMX flags, library
versions), then evaluates one fixed synthetic set of clips (`--clips` clips of `--min_seconds`..`--max_seconds`,
lengths and features drawn from a fixed seed: random features, since speed does not depend on them) at each
batch size, for

  * project: the network eval.py runs (src.inference.load_predictor: DeepSpeechModel + PredictWithSoftmax,
    GRAPH_MODE, memory released when the padded length changes as eval.py does), batched as eval.py batches
    (src.dataset.make_batches in order of duration, src.dataset.collate: each batch padded to its bucket length,
    no rows added);
  * onnx: the same checkpoint exported by src.exporting.export_file (what export.py writes), run by
    onnxruntime on the CPU through src.exporting.ExportedModel. Exported graphs are static, so every batch is
    padded to the longest clip's bucket and a short last batch gets empty rows (length 0), as transcribe.py does;
  * torch: bench/torch_reference.py's independent PyTorch DeepSpeech2 with the same weights, eval mode, the
    project's batches cut to their longest clip (no static shapes needed). It has no padding masks, so its
    greedy outputs match the project's for clips as long as their batch's longest (all of them at batch 1)
    and may differ for shorter ones. PyTorch is optional: without it the other two are reported alone.

A fresh subprocess per (side, batch), so each peak RSS (VmHWM) is its own; one more subprocess first writes
the random-weight checkpoint (seed 1), its ONNX exports and its weights for PyTorch into a temporary folder.
Each configuration runs the whole set twice: the first pass includes graph compilation (project) or session
warm-up; the second is timed. Reported: real-time factor RTF = compute seconds / audio seconds (the network's
forward pass and softmax, not feature extraction or decoding; lower is faster), audio seconds per second,
first-pass seconds, peak RSS, and the greedy outputs' agreement with the project's. A JSON record (time, host,
git commit, arguments, every number) is appended to bench/results/eval_speed_history.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
HISTORY = REPO_ROOT / "bench" / "results" / "eval_speed_history.jsonl"
SIDES = ("project", "onnx", "torch")
SEED = 1


# ------------------------------------------------------------------------------------------ the clip set
def clip_frames(clips: int, min_seconds: float, max_seconds: float, seed: int = SEED) -> list[int]:
    """Spectrogram frames of each clip of the fixed set (10 ms hop, lengths uniform in [min, max] seconds)."""
    from src import shapes

    seconds = np.random.default_rng(seed).uniform(min_seconds, max_seconds, clips)
    return [shapes.num_frames(int(round(s * 16000)), 160) for s in seconds]


def clip_features(index: int, frames: int) -> np.ndarray:
    """Features (161, frames) f32 of clip `index`, the same in every process."""
    return np.random.default_rng((SEED, index)).standard_normal((161, frames)).astype(np.float32)


def eval_batches(frames: list[int], batch: int) -> list[list[int]]:
    """eval.py's batches: in order of duration, `batch` clips each, the last one short."""
    from src.dataset import make_batches

    return make_batches(frames, batch, SEED, 0, in_order=True, drop_last=False)


def audio_seconds(frames: list[int]) -> float:
    return sum((n - 1) * 0.01 for n in frames)


# --------------------------------------------------------------------------------------------- workers
def prepare(spec: dict) -> dict:
    """Write the random-weight checkpoint, its weights as .npz and one ONNX export per batch size."""
    import mindspore as ms

    from src import config as C
    from src import shapes
    from src.deepspeech2 import build_network
    from src.exporting import example_inputs, export_file
    from src.inference import load_predictor
    from src.runtime import set_context
    from src.text import load_labels

    set_context("CPU")
    ms.set_seed(SEED)
    np.random.seed(SEED)
    folder = Path(spec["folder"])
    labels = load_labels(REPO_ROOT / "labels.json")
    model = C.ModelConfig(hidden_size=spec["hidden"], hidden_layers=spec["layers"])
    net = build_network(labels, C.SpectConfig(), model)
    ckpt = folder / "model.ckpt"
    ms.save_checkpoint(net, str(ckpt))
    np.savez(folder / "weights.npz", **{p.name: p.asnumpy() for p in net.get_parameters()})
    _, cell = load_predictor(str(ckpt), labels, C.SpectConfig(), model)
    static = shapes.bucket_length(max(spec["frames"]))
    exports = {}
    for batch in spec["batches"]:
        features, lengths = example_inputs(batch, 161, static)
        exports[str(batch)] = str(export_file(cell, features, lengths, str(folder / f"model_b{batch}"), "ONNX"))
    return {"ckpt": str(ckpt), "onnx": exports, "static_frames": static}


def project_predict(spec: dict):
    """predict(features, lengths) -> (probs, out_lengths) of eval.py's network, and the threads it uses."""
    import mindspore as ms

    from src import config as C
    from src.inference import cell_predict_fn, load_predictor
    from src.runtime import set_context
    from src.text import load_labels

    set_context("CPU")
    if spec["threads"]:
        ms.set_context(runtime_num_threads=spec["threads"])
    model = C.ModelConfig(hidden_size=spec["hidden"], hidden_layers=spec["layers"])
    _, cell = load_predictor(spec["ckpt"], load_labels(REPO_ROOT / "labels.json"), C.SpectConfig(), model)
    release = C.EvalConfig().release_memory_on_new_shape and not spec.get("keep_memory")  # eval.py's default
    return cell_predict_fn(cell, release), int(ms.get_context("runtime_num_threads"))


def onnx_predict(spec: dict):
    """predict over the static ONNX export: pad to its frames, fill a short batch with empty rows."""
    import onnxruntime as ort

    from src.exporting import ExportedModel

    if spec["threads"]:
        os.environ["OMP_NUM_THREADS"] = str(spec["threads"])
    model = ExportedModel(spec["onnx"])
    if spec["threads"]:  # ExportedModel uses onnxruntime's defaults; rebuild the session with the thread count
        options = ort.SessionOptions()
        options.intra_op_num_threads = spec["threads"]
        model.session = ort.InferenceSession(spec["onnx"], options, providers=["CPUExecutionProvider"])
    rows, frames = spec["batch"], spec["static_frames"]

    def predict(features, lengths):
        n, _, bins, t = features.shape
        padded = np.zeros((rows, 1, bins, frames), np.float32)
        padded[:n, :, :, :t] = features
        full = np.zeros(rows, np.int32)
        full[:n] = lengths
        probs, out_lengths = model(padded, full)
        return probs[:n], out_lengths[:n]

    return predict, spec["threads"] or os.cpu_count()


def torch_predict(spec: dict):
    """predict with bench/torch_reference.py's network holding the same weights (eval mode, no autograd)."""
    import torch

    from bench import torch_reference as ref

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    model = ref.TorchDeepSpeech(spec["hidden"], spec["layers"])
    with np.load(spec["weights"]) as weights:
        ref.load_project_weights(model, dict(weights))
    model.eval()

    def predict(features, lengths):
        # PyTorch needs no static shapes: the batch is cut to its longest clip. The reference has no padding
        # masks, so only that clip's outputs are exactly the project's; shorter ones see the padding.
        features = np.ascontiguousarray(features[..., : int(lengths.max())])
        with torch.inference_mode():
            probs = torch.softmax(model(torch.from_numpy(features)), dim=-1).permute(1, 0, 2).numpy()
        return probs, (lengths + 2 * 5 - 11) // 2 + 1

    return predict, torch.get_num_threads()


def _status_gb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 2**20
    return 0.0


def evaluate_set(predict, frames: list[int], batch: int) -> tuple[float, list[str]]:
    """One pass over the clip set: (seconds inside predict, per-clip hash of the greedy output)."""
    from src.dataset import collate

    spent, hashes = 0.0, [""] * len(frames)
    for indices in eval_batches(frames, batch):
        features, lengths, _, _ = collate([(clip_features(i, frames[i]), ()) for i in indices])
        started = time.perf_counter()
        probs, out_lengths = predict(features, lengths)
        spent += time.perf_counter() - started
        for row, i in enumerate(indices):
            best = np.asarray(probs[row, : int(out_lengths[row])]).argmax(axis=-1).astype(np.int8)
            hashes[i] = hashlib.sha1(best.tobytes()).hexdigest()[:12]
    return spent, hashes


def worker(spec: dict) -> dict:
    """Inside a fresh process: prepare the models, or evaluate the set twice on one side at one batch size."""
    if spec["mode"] == "prepare":
        return prepare(spec)
    make = {"project": project_predict, "onnx": onnx_predict, "torch": torch_predict}[spec["side"]]
    started = time.perf_counter()
    predict, threads = make(spec)
    load_s = time.perf_counter() - started
    first_s, _ = evaluate_set(predict, spec["frames"], spec["batch"])
    timed_s, hashes = evaluate_set(predict, spec["frames"], spec["batch"])
    return {"threads": threads, "load_s": load_s, "first_pass_s": first_s, "timed_s": timed_s, "hashes": hashes,
            "peak_rss_gb": _status_gb("VmHWM")}  # fmt: skip


# ------------------------------------------------------------------------------------------- the parent
def parse_batches(text: str) -> list[int]:
    """'20,1' -> [20, 1] (positive, distinct)."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) <= 0 or len(set(batches)) != len(batches):
        raise ValueError(f"--batches: {text!r} is not a comma-separated list of distinct positive batch sizes")
    return batches


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluation RTF and memory: project vs ONNX Runtime vs PyTorch.")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--clips", type=int, default=20, help="clips in the fixed synthetic set")
    parser.add_argument("--min_seconds", type=float, default=5.0)
    parser.add_argument("--max_seconds", type=float, default=15.0)
    parser.add_argument("--batches", default="20,1", help="batch sizes, comma-separated")
    parser.add_argument("--only", choices=SIDES, default=None, help="run one side only")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for all sides (0: library default)")
    parser.add_argument("--timeout_s", type=float, default=3600.0, help="per subprocess")
    parser.add_argument("--mem_limit_gb", type=float, default=0.0, help="kill a subprocess past this RSS (0: off)")
    parser.add_argument(
        "--keep_memory",
        action="store_true",
        help="project: keep each length's memory (release_memory_on_new_shape off)",
    )
    parser.add_argument("--history", default=str(HISTORY), help="JSON lines file the run's record is appended to")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.batch_list = parse_batches(args.batches)
    except ValueError as err:
        parser.error(str(err))
    if min(args.hidden, args.layers, args.clips) <= 0 or args.threads < 0:
        parser.error("--hidden, --layers and --clips must be positive, --threads >= 0")
    if not 0.5 <= args.min_seconds <= args.max_seconds:
        parser.error("need 0.5 <= --min_seconds <= --max_seconds")
    return args


def summarise(data: dict, audio_s: float, reference: list[str] | None) -> dict:
    """RTF, audio-s/s and agreement with the project's greedy outputs from a child's result."""
    out = {k: v for k, v in data.items() if k != "hashes"}
    out["rtf"] = data["timed_s"] / audio_s
    out["audio_s_per_s"] = audio_s / data["timed_s"]
    if reference is not None:
        out["same_greedy_as_project"] = sum(a == b for a, b in zip(data["hashes"], reference)) / len(reference)
    return out


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: dict, batches: list[int], sides: list[str]) -> list[str]:
    """Rows per batch size: RTF, audio-s/s, first pass s, peak RSS GB per side, then agreement."""
    keys = (("rtf", "RTF", ".3f"), ("audio_s_per_s", "audio-s/s", ".1f"), ("first_pass_s", "1st pass s", ".1f"),
            ("peak_rss_gb", "peak RSS GB", ".2f"), ("same_greedy_as_project", "same greedy", ".2f"))  # fmt: skip
    cell = max(9, max(len(title) for _, title, _ in keys) // len(sides) + 2)
    rows = [f"{'batch':<7}" + "".join(f"{title:>{cell * len(sides)}}" for _, title, _ in keys)]
    rows.append(f"{'':<7}" + "".join(f"{side:>{cell}}" for side in sides) * len(keys))
    for batch in batches:
        row = f"{batch:<7}"
        for key, _, spec in keys:
            row += "".join(
                f"{_fmt(results.get(side, {}).get(str(batch), {}).get(key), spec):>{cell}}" for side in sides
            )
        rows.append(row)
    return rows


def run_side(args, side: str, batch: int, common: dict, runner, audio_s: float, reference) -> dict:
    print(f"{side}: batch {batch} ...", end=" ", flush=True)
    spec = {**common, "mode": "eval", "side": side, "batch": batch}
    if side == "onnx":
        spec["onnx"] = common["prepared"]["onnx"][str(batch)]
    child = runner(spec)
    if child.failure:
        print(child.failure)
        return {"failure": child.failure}
    numbers = summarise(child.data, audio_s, reference)
    load = getattr(child, "max_load", None)  # other processes on the host slow every number
    print(f"RTF {numbers['rtf']:.3f}, peak RSS {numbers['peak_rss_gb']:.2f} GB, host load <= {_fmt(load, '.1f')}")
    return {**numbers, "wall_s": round(child.wall_s, 1), "max_load": load, "hashes": child.data["hashes"]}


def run_all(args: argparse.Namespace, sides: list[str], frames: list[int]) -> tuple[dict, dict]:
    """The prepare child, then each side at each batch size in its own child: (prepared, results)."""
    from bench.train_speed import run_child

    def runner(spec: dict):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        # the limit is for the measured configurations; writing the models is not measured
        return run_child(cmd, args.timeout_s, 0.0 if spec["mode"] == "prepare" else args.mem_limit_gb)

    audio_s = audio_seconds(frames)
    results: dict = {side: {} for side in sides}
    with tempfile.TemporaryDirectory(prefix="eval_speed_") as folder:
        base = {"hidden": args.hidden, "layers": args.layers, "threads": args.threads, "frames": frames}
        base["keep_memory"] = args.keep_memory
        print("preparing the checkpoint and its ONNX exports ...", end=" ", flush=True)
        prep = runner({**base, "mode": "prepare", "folder": folder, "batches": args.batch_list})
        if prep.failure:
            print(prep.failure)
            return {"failure": prep.failure}, results
        print(f"done ({prep.wall_s:.0f} s)")
        weights = str(Path(folder) / "weights.npz")
        common = {**base, "prepared": prep.data, "ckpt": prep.data["ckpt"], "weights": weights,
                  "static_frames": prep.data["static_frames"]}  # fmt: skip
        for batch in args.batch_list:
            reference = None
            for side in sides:
                got = run_side(args, side, batch, common, runner, audio_s, reference)
                if side == "project" and "hashes" in got:
                    reference = got["hashes"]
                got.pop("hashes", None)
                results[side][str(batch)] = got
    return prep.data, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from bench.train_speed import RESULT_TAG, append_history, git_commit, library_versions, start_run

    if args.worker:
        print(RESULT_TAG + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    versions = {**library_versions(), "onnxruntime": _version("onnxruntime")}
    host, sides = start_run(args.only, args.threads, versions, SIDES)
    if not sides:
        return 2
    frames = clip_frames(args.clips, args.min_seconds, args.max_seconds)
    audio_s = audio_seconds(frames)
    print(f"clip set: {len(frames)} clips, {audio_s:.1f} s of audio ({min(frames)}-{max(frames)} frames)")
    prepared, results = run_all(args, sides, frames)
    print(f"\nmodel: hidden {args.hidden} x {args.layers} layers; RTF = compute s / audio s (lower is faster)")
    print("\n".join(table(results, args.batch_list, sides)))
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "batch_list")}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {"timestamp": stamp, "host": host, "git": git_commit(), "args": settings, "sides": sides,
              "clips": {"frames": frames, "audio_s": audio_s}, "prepare": prepared, "results": results}  # fmt: skip
    append_history(Path(args.history), record)
    print(f"appended to {args.history}")
    failed = "failure" in prepared or any("failure" in r for side in results.values() for r in side.values())
    return 1 if failed else 0


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
