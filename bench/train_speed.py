"""Training speed and memory: the project's compiled training step against an independent PyTorch reference.

Usage:
    python bench/train_speed.py [--cases 8x10,20x15] [--hidden 1024] [--layers 5] [--steps 3] [--warmup 1]
                                [--sweep 2,4,6,8,10,12,14,17] [--sweep_batch 2] [--only project|torch]
                                [--threads N] [--timeout_s S] [--mem_limit_gb G] [--history FILE]

One command, one run. It prints the host (CPU model, cores, AVX2 / AVX-512 / AVX512_BF16 / AMX flags, library
versions), then for each case BxS (batch B of full-length S-second clips, fixed synthetic features and ~15
characters per second of labels) trains `--warmup` steps and times `--steps` more, for

  * the project: src.deepspeech2.DeepSpeechModel + NetWithLossClass + src.train_step.TrainOneStep with
    build_optimizer and the src/config.py defaults (loss scale, gradient clip, Adam), GRAPH_MODE on the CPU,
    the step train.py runs, built from whatever src/ holds;
  * PyTorch: bench/torch_reference.py, the same architecture, loss, clip and Adam written independently.

Each case and each side runs in a fresh subprocess, so its peak RSS (VmHWM) is its own. The sweep trains one
step per clip length at batch `--sweep_batch` in one process, the longest length first and the others in the
order given, and reads the RSS after each: a process that keeps memory per shape ends well above its RSS after
the longest length (ratio final / after-longest > 1), one that does not stays at ~1.0.
Reported: step time, audio seconds per second (batch x seconds / step time), GFLOP/s from the FLOP model in
bench/flops.py, peak RSS, and the project/PyTorch ratios. A JSON record of the run (time, host, git commit,
arguments, every number) is appended to bench/results/train_speed_history.jsonl.

A subprocess that runs past `--timeout_s`, past `--mem_limit_gb` of RSS (0: no limit of ours), or is killed
by the system (SIGKILL: usually the out-of-memory killer) is reported in one line with its exit status, its
last stderr line and the largest RSS seen; a sweep keeps the lengths it finished. Exit status: 0 when every
subprocess gave its numbers, 1 when some did not (the record is still appended), 2 when nothing could run.

PyTorch is an optional benchmark dependency, not in requirements.txt:
    pip install "torch==2.13.0+cpu"
Without it the project's numbers are printed alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HISTORY = REPO_ROOT / "bench" / "results" / "train_speed_history.jsonl"
SIDES = ("project", "torch")
CHARS_PER_SECOND = 15
FLAGS = {"AVX2": ("avx2",), "AVX-512": ("avx512f",), "AVX512_BF16": ("avx512_bf16",), "AMX": ("amx_tile",)}
RESULT_TAG = "RESULT "
PROGRESS_TAG = "PROGRESS "  # one line per finished sweep step, so a child killed later still leaves its numbers
TORCH_INSTALL = 'pip install "torch==2.13.0+cpu"'


# ----------------------------------------------------------------------------------------------- the host
def cpu_info(cpuinfo: str | None = None) -> dict:
    """CPU model, logical/usable cores and the SIMD flags that matter here, from /proc/cpuinfo."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    model, flags = "unknown", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "flags": {name: any(f in flags for f in needles) for name, needles in FLAGS.items()},
        "mem_total_gb": _meminfo_gb("MemTotal"),
    }


def _meminfo_gb(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 2**20, 2)
    except OSError:
        pass
    return None


def library_versions() -> dict:
    """Installed versions, read from package metadata (nothing is imported)."""
    from importlib import metadata

    versions = {}
    for name in ("mindspore", "torch", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str:
    """HEAD's commit, with '+dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=REPO_ROOT, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# --------------------------------------------------------------------------------------- child processes
@dataclass
class ChildResult:
    """What one benchmark subprocess gave back: its JSON result, or why there is none."""

    data: dict = field(default_factory=dict)
    failure: str = ""  # empty when the child reported a result
    wall_s: float = 0.0
    progress: list[dict] = field(default_factory=list)  # its PROGRESS lines, also when it failed
    max_rss_gb: float = 0.0  # the largest RSS the parent saw while polling (every 0.2 s)
    max_load: float = 0.0  # the largest 1-minute load average seen meanwhile (other processes slow every number)


def _rss_gb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return 0.0


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output on stderr)"


def run_child(cmd: list[str], timeout_s: float, mem_limit_gb: float = 0.0) -> ChildResult:
    """Run a benchmark subprocess; kill it past `timeout_s` or past `mem_limit_gb` of RSS (0: no limit).

    Its result is the last stdout line starting with 'RESULT '. A child that was killed or failed is
    described in one line (exit status, the reason, its last stderr line), never as a traceback.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            started = time.monotonic()
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=err, start_new_session=True)
            killed, max_rss, max_load = "", 0.0, os.getloadavg()[0]
            while proc.poll() is None:
                time.sleep(0.2)
                max_rss, max_load = max(max_rss, _rss_gb(proc.pid)), max(max_load, os.getloadavg()[0])
                if time.monotonic() - started > timeout_s:
                    killed = f"timed out after {timeout_s:.0f} s"
                elif mem_limit_gb and max_rss > mem_limit_gb:
                    killed = f"killed at {mem_limit_gb:g} GB RSS (--mem_limit_gb)"
                if killed:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            wall = time.monotonic() - started
        rc, lines = proc.returncode, out_path.read_text(errors="replace").splitlines()
        progress = [json.loads(line[len(PROGRESS_TAG) :]) for line in lines if line.startswith(PROGRESS_TAG)]
        for line in reversed(lines):
            if line.startswith(RESULT_TAG) and not killed and rc == 0:
                return ChildResult(json.loads(line[len(RESULT_TAG) :]), "", wall, progress, max_rss, max_load)
        if not killed and rc < 0:
            name = signal.Signals(-rc).name
            killed = f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        failure = f"{killed or 'failed'} (rc {rc}); last stderr line: {_last_line(err_path)}"
        return ChildResult({}, failure, wall, progress, max_rss, max_load)


def child_command(spec: dict) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]


# ------------------------------------------------------------------------------------------ the workers
def synthetic_batch(batch: int, seconds: float, seed: int = 0) -> tuple:
    """Fixed full-length clips: features (N, 1, 161, T) f32, lengths (N,) i32, labels (N, S) i32 in 0..27,
    label lengths (N,) i32, with T = 100 * seconds + 1 frames and S = 15 characters per second."""
    import numpy as np

    from src import shapes

    frames = shapes.num_frames(int(round(seconds * 16000)), 160)
    chars = max(1, int(round(CHARS_PER_SECOND * seconds)))
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((batch, 1, 161, frames)).astype(np.float32)
    lengths = np.full(batch, frames, np.int32)
    labels = rng.integers(0, 28, (batch, chars)).astype(np.int32)
    return features, lengths, labels, np.full(batch, chars, np.int32)


def project_stepper(
    hidden: int, layers: int, threads: int, recompute_rnn: bool = False, micro_batch_seconds: float | None = None
):
    """The project's training step as train.py builds it: (run(batch) -> loss, threads used).

    Like the trainer (TrainingConfig.release_memory_on_new_shape), MindSpore's cached memory is released when
    the batch shape changes, and a batch past `micro_batch_seconds` of padded audio (None: the config default,
    TrainingConfig.micro_batch_seconds) is split into micro-batches with one optimizer update.
    """
    import mindspore as ms

    from src import config as C
    from src.deepspeech2 import NetWithLossClass, build_network
    from src.runtime import release_runtime_memory, set_context
    from src.text import load_labels
    from src.train_step import BatchStep, TrainOneStep, build_optimizer, set_learning_rate

    set_context("CPU")
    if threads:
        ms.set_context(runtime_num_threads=threads)
    cfg = C.TrainConfig()
    cfg.ModelConfig.hidden_size, cfg.ModelConfig.hidden_layers = hidden, layers
    cfg.ModelConfig.recompute_rnn = recompute_rnn
    if micro_batch_seconds is not None:
        cfg.TrainingConfig.micro_batch_seconds = micro_batch_seconds
    ms.set_seed(cfg.TrainingConfig.seed)
    labels = load_labels(REPO_ROOT / "labels.json")
    net = build_network(labels, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    o = cfg.OptimConfig
    optimizer = build_optimizer(net, o.learning_rate, o.betas, o.eps, o.weight_decay)
    step = TrainOneStep(NetWithLossClass(net, blank=len(labels) - 1), optimizer, o.loss_scale, o.max_norm)
    step.set_train()

    batch_step = BatchStep(step, cfg.TrainingConfig.micro_batch_seconds, cfg.DataConfig.SpectConfig.window_stride)
    shapes = []

    def run(batch: tuple) -> float:
        shape = batch_step.pass_shape(batch)
        if cfg.TrainingConfig.release_memory_on_new_shape and shapes and shapes[-1] != shape:
            release_runtime_memory()
        shapes.append(shape)
        set_learning_rate(optimizer, o.learning_rate)  # the trainer writes the schedule's LR every step
        loss, _, _ = batch_step(batch)
        return float(loss.asnumpy())

    return run, int(ms.get_context("runtime_num_threads"))


def torch_stepper(hidden: int, layers: int, threads: int, **_project_options):
    """The PyTorch reference's training step with the same optimizer settings: (run(batch) -> loss, threads)."""
    import torch

    from bench import torch_reference as ref
    from src import config as C

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(1)
    o = C.OptimConfig()
    model = ref.TorchDeepSpeech(hidden, layers).train()
    optimizer = ref.build_optimizer(model, o.learning_rate, tuple(o.betas), o.eps, o.weight_decay)

    def run(batch: tuple) -> float:
        tensors = [torch.from_numpy(a) for a in batch]
        tensors[1:] = [t.long() for t in tensors[1:]]
        return ref.train_step(model, optimizer, tuple(tensors), o.max_norm)

    return run, torch.get_num_threads()


def _status_gb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 2**20
    return 0.0


def worker(spec: dict) -> dict:
    """Inside a fresh process: time a case (mode 'case') or walk the clip lengths (mode 'sweep')."""
    make = project_stepper if spec["side"] == "project" else torch_stepper
    options = {
        "recompute_rnn": spec.get("recompute_rnn", False),
        "micro_batch_seconds": spec.get("micro_batch_seconds"),
    }
    run, threads = make(spec["hidden"], spec["layers"], spec["threads"], **options)
    result = {"threads": threads}
    if spec["mode"] == "case":
        batch = synthetic_batch(spec["batch"], spec["seconds"])
        warm = []
        for _ in range(spec["warmup"]):
            started = time.perf_counter()
            run(batch)
            warm.append(time.perf_counter() - started)
        times, loss = [], float("nan")
        for _ in range(spec["steps"]):
            started = time.perf_counter()
            loss = run(batch)
            times.append(time.perf_counter() - started)
        result.update(warmup_s=warm, step_times_s=times, loss=loss)
    else:
        lengths = sweep_order(spec["lengths"])
        result.update(lengths=lengths, rss_gb=[], step_s=[])
        for seconds in lengths:
            started = time.perf_counter()
            run(synthetic_batch(spec["batch"], seconds))
            result["step_s"].append(time.perf_counter() - started)
            result["rss_gb"].append(_status_gb("VmRSS"))
            done = {"seconds": seconds, "step_s": result["step_s"][-1], "rss_gb": result["rss_gb"][-1]}
            print(PROGRESS_TAG + json.dumps(done), flush=True)
    result.update(peak_rss_gb=_status_gb("VmHWM"), rss_gb_end=_status_gb("VmRSS"))
    return result


def sweep_order(lengths: list[float]) -> list[float]:
    """The longest length first, then the others in the order given."""
    longest = max(lengths)
    rest = list(lengths)
    rest.remove(longest)
    return [longest] + rest


# ------------------------------------------------------------------------------------------- the parent
def parse_cases(text: str) -> list[tuple[int, float]]:
    """'8x10,20x15' -> [(8, 10.0), (20, 15.0)]: batch x clip seconds."""
    cases = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        batch, sep, seconds = item.partition("x")
        try:
            case = (int(batch), float(seconds))
        except ValueError:
            case = (0, 0.0)
        if not sep or case[0] <= 0 or case[1] <= 0:
            raise ValueError(f"--cases: {item!r} is not BATCHxSECONDS with both positive (e.g. 8x10)")
        cases.append(case)
    return cases


def parse_lengths(text: str) -> list[float]:
    """'2,4,17' -> [2.0, 4.0, 17.0] (distinct, positive); '' -> [] (no sweep)."""
    try:
        lengths = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise ValueError(f"--sweep: {text!r} is not a comma-separated list of seconds") from err
    if any(s <= 0 for s in lengths) or len(set(lengths)) != len(lengths):
        raise ValueError(f"--sweep: {text!r}: clip lengths must be positive and distinct")
    return lengths


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Project vs PyTorch training step: speed and memory.")
    parser.add_argument("--cases", default="8x10,20x15", help="BATCHxSECONDS,... (full-length clips)")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (compilation included)")
    parser.add_argument("--sweep", default="2,4,6,8,10,12,14,17", help="clip seconds, one step each; '' skips")
    parser.add_argument("--sweep_batch", type=int, default=2)
    parser.add_argument("--only", choices=SIDES, default=None, help="run one side only")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for both (0: library default)")
    parser.add_argument(
        "--recompute_rnn", action="store_true", help="the project with ModelConfig.recompute_rnn (less memory)"
    )
    parser.add_argument(
        "--micro_batch_seconds",
        type=float,
        default=None,
        help="the project splits batches past this many padded seconds (default: TrainingConfig's; 0: never)",
    )
    parser.add_argument("--timeout_s", type=float, default=3600.0, help="per subprocess")
    parser.add_argument("--mem_limit_gb", type=float, default=0.0, help="kill a subprocess past this RSS (0: off)")
    parser.add_argument("--history", default=str(HISTORY), help="JSON lines file the run's record is appended to")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.case_list, args.sweep_list = parse_cases(args.cases), parse_lengths(args.sweep)
    except ValueError as err:
        parser.error(str(err))
    if min(args.hidden, args.layers, args.steps, args.sweep_batch) <= 0 or args.warmup < 0 or args.threads < 0:
        parser.error("--hidden, --layers, --steps and --sweep_batch must be positive, --warmup/--threads >= 0")
    return args


def torch_available() -> str:
    """'' when `import torch` works, else the reason."""
    try:
        import torch  # noqa: F401
    except ImportError as err:
        return str(err)
    return ""


def start_run(only: str | None, threads: int, versions: dict, all_sides: tuple = SIDES) -> tuple[dict, list[str]]:
    """Print the host and pick the sides to run (`only`, else all_sides) less a missing torch: (host record, sides)."""
    host = {**cpu_info(), "versions": versions, "threads_requested": threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}  # fmt: skip
    print_host(host)
    sides = [only] if only else list(all_sides)
    missing = torch_available() if "torch" in sides else ""
    if missing:
        print(f"PyTorch reference skipped: `import torch` failed ({missing}); install it with: {TORCH_INSTALL}")
        sides.remove("torch")
    return host, sides


def case_numbers(data: dict, batch: int, seconds: float, hidden: int, layers: int) -> dict:
    """Step time (mean of the timed steps), audio-s/s, GFLOP/s and peak RSS from a child's result."""
    from bench.flops import train_step_flops
    from src import shapes

    step = sum(data["step_times_s"]) / len(data["step_times_s"])
    frames = shapes.num_frames(int(round(seconds * 16000)), 160)
    return {
        "step_s": step,
        "audio_s_per_s": batch * seconds / step,
        "gflop_per_s": train_step_flops(batch, frames, hidden, layers) / step / 1e9,
        "peak_rss_gb": data["peak_rss_gb"],
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def _spec(args: argparse.Namespace, side: str, **extra) -> dict:
    base = {"side": side, "hidden": args.hidden, "layers": args.layers, "threads": args.threads}
    base["recompute_rnn"] = args.recompute_rnn
    base["micro_batch_seconds"] = args.micro_batch_seconds
    return {**base, "steps": args.steps, "warmup": args.warmup, **extra}


def run_cases(args: argparse.Namespace, sides: list[str]) -> list[dict]:
    """Each case on each side in its own subprocess: [{batch, seconds, project: {...}, torch: {...}}]."""
    records = []
    for batch, seconds in args.case_list:
        record = {"batch": batch, "seconds": seconds}
        for side in sides:
            print(f"{side}: batch {batch} x {seconds:g} s ...", end=" ", flush=True)
            spec = _spec(args, side, mode="case", batch=batch, seconds=seconds)
            child = run_child(child_command(spec), args.timeout_s, args.mem_limit_gb)
            if child.failure:
                record[side] = {"failure": child.failure, "max_rss_seen_gb": round(child.max_rss_gb, 2)}
                print(child.failure)
                continue
            numbers = case_numbers(child.data, batch, seconds, args.hidden, args.layers)
            record[side] = {**child.data, **numbers, "wall_s": round(child.wall_s, 1), "max_load": child.max_load}
            print(f"step {numbers['step_s']:.3f} s, peak RSS {numbers['peak_rss_gb']:.2f} GB", flush=True)
        records.append(record)
    return records


def run_sweeps(args: argparse.Namespace, sides: list[str]) -> dict:
    """One process per side walks the clip lengths; adds final RSS / RSS after the longest length."""
    sweeps = {}
    for side in sides:
        lengths = args.sweep_list
        print(f"{side}: sweep at batch {args.sweep_batch} over {len(lengths)} clip lengths ...", end=" ", flush=True)
        spec = _spec(args, side, mode="sweep", batch=args.sweep_batch, lengths=lengths)
        child = run_child(child_command(spec), args.timeout_s, args.mem_limit_gb)
        if child.failure:  # keep the lengths it finished
            done = {key: [p[key] for p in child.progress] for key in ("step_s", "rss_gb")}
            sweeps[side] = {"failure": child.failure, "lengths": [p["seconds"] for p in child.progress], **done}
            sweeps[side]["max_rss_seen_gb"] = round(child.max_rss_gb, 2)
            print(child.failure)
            continue
        data = child.data
        data["final_over_longest"] = data["rss_gb"][-1] / data["rss_gb"][0]  # the longest runs first
        sweeps[side] = {**data, "wall_s": round(child.wall_s, 1), "max_load": child.max_load}
        print(f"peak RSS {data['peak_rss_gb']:.2f} GB, final / after longest {data['final_over_longest']:.3f}")
    return sweeps


def print_host(host: dict) -> None:
    flags = ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in host["flags"].items())
    versions = ", ".join(f"{name} {version or 'not installed'}" for name, version in host["versions"].items())
    print(f"CPU: {host['cpu']}; {host['logical_cpus']} logical CPUs ({host['usable_cpus']} usable); "
          f"{host['mem_total_gb']} GB RAM")  # fmt: skip
    print(f"flags: {flags}")
    print(f"versions: {versions}")
    threads = host["threads_requested"] or "library defaults"
    print(f"threads requested: {threads}; OMP_NUM_THREADS={host['OMP_NUM_THREADS'] or 'unset'}")


def _get(record: dict, side: str, key: str):
    return record.get(side, {}).get(key)


def case_table(cases: list[dict]) -> list[str]:
    """Side-by-side rows: step s, audio-s/s, GFLOP/s, peak RSS GB (project / torch), then the ratios."""
    head = (f"{'case':<12}{'step s':>17}{'audio-s/s':>17}{'GFLOP/s':>17}{'peak RSS GB':>17}"
            f"{'speed':>9}{'memory':>9}")  # fmt: skip
    sub = f"{'':<12}" + f"{'project':>9}{'torch':>8}" * 4 + f"{'proj/pt':>9}{'proj/pt':>9}"
    rows = [head, sub]
    for r in cases:
        row = f"{r['batch']} x {r['seconds']:g} s".ljust(12)
        for key, spec in (("step_s", ".3f"), ("audio_s_per_s", ".2f"), ("gflop_per_s", ".1f"), ("peak_rss_gb", ".2f")):
            row += f"{_fmt(_get(r, 'project', key), spec):>9}{_fmt(_get(r, 'torch', key), spec):>8}"
        speed = _ratio(_get(r, "project", "audio_s_per_s"), _get(r, "torch", "audio_s_per_s"))
        memory = _ratio(_get(r, "project", "peak_rss_gb"), _get(r, "torch", "peak_rss_gb"))
        rows.append(row + f"{_fmt(speed, '.2f'):>9}{_fmt(memory, '.2f'):>9}")
    return rows


def sweep_table(sweeps: dict, batch: int, lengths: list[float]) -> list[str]:
    """RSS after each clip length (in the order run) per side, then final / after-longest and peak RSS.

    A side whose process was killed shows the lengths it finished and '-' for the rest.
    """
    if not sweeps:
        return []
    rows = [f"sweep at batch {batch}, longest first: RSS GB after each step"]
    rows.append(f"{'clip s':<24}" + "".join(f"{side:>10}" for side in sweeps))
    for i, seconds in enumerate(sweep_order(lengths)):
        cells = (s["rss_gb"][i] if i < len(s.get("rss_gb", [])) else None for s in sweeps.values())
        rows.append(f"{seconds:<24g}" + "".join(f"{_fmt(v, '.2f'):>10}" for v in cells))
    for label, key, spec in (
        ("final / after longest", "final_over_longest", ".3f"),
        ("peak RSS GB", "peak_rss_gb", ".2f"),
    ):
        rows.append(f"{label:<24}" + "".join(f"{_fmt(s.get(key), spec):>10}" for s in sweeps.values()))
    return rows


def failure_lines(cases: list[dict], sweeps: dict) -> list[str]:
    """One line per subprocess that gave no result: which, why, the largest RSS seen."""
    lines = []
    for case in cases:
        for side in SIDES:
            if "failure" in case.get(side, {}):
                f = case[side]
                lines.append(f"{side} {case['batch']} x {case['seconds']:g} s: {f['failure']} "
                             f"(largest RSS seen {f['max_rss_seen_gb']:.2f} GB)")  # fmt: skip
    for side, s in sweeps.items():
        if "failure" in s:
            lines.append(f"{side} sweep: {s['failure']} (largest RSS seen {s['max_rss_seen_gb']:.2f} GB)")
    return lines


def load_line(results: list[dict], cpus: int) -> str:
    """The highest 1-minute load average seen while measuring, with a warning when the host was oversubscribed."""
    loads = [r["max_load"] for r in results if "max_load" in r]
    if not loads:
        return "host load while measuring: unknown"
    line = f"host load while measuring: 1-min load average up to {max(loads):.1f} on {cpus} CPUs"
    if max(loads) > cpus + 1:
        line += " (other processes competed for the CPUs: timings are unreliable, OpenMP ones the most)"
    return line


def append_history(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")  # MindSpore: errors only
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0
    host, sides = start_run(args.only, args.threads, library_versions())
    if not sides:
        return 2
    cases = run_cases(args, sides)
    sweeps = run_sweeps(args, sides) if args.sweep_list else {}
    used = {side: _get(c, side, "threads") for c in cases for side in sides if _get(c, side, "threads")}
    print(f"\nmodel: hidden {args.hidden} x {args.layers} layers; threads used: {used or 'unknown'}")
    print(load_line([c.get(side, {}) for c in cases for side in sides] + list(sweeps.values()), host["usable_cpus"]))
    failures = failure_lines(cases, sweeps)
    tables = case_table(cases) + [""] + sweep_table(sweeps, args.sweep_batch, args.sweep_list)
    print("\n".join(tables + (["", "no result:"] + failures if failures else [])))
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "case_list", "sweep_list")}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {"timestamp": stamp, "host": {**host, "threads_used": used}, "git": git_commit(), "args": settings,
              "sides": sides, "cases": cases, "sweep": sweeps}  # fmt: skip
    append_history(Path(args.history), record)
    print(f"appended to {args.history}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
