"""The lab's training flow for one epoch at the lab's batch 20, on a generated LibriSpeech-like corpus of 1-17 s.

Usage:
    python bench/lab_epoch.py [--clips 240] [--min_seconds 1] [--max_seconds 17] [--work DIR] [--keep]
                              [-- train.py options ...]

Generates `--clips` clips of English speech (espeak-ng, several voices; sentences joined until the clip's
target duration, then silence to it) whose durations spread evenly over [min, max] seconds, writes them as
16 kHz wav + txt and the CSV manifest training reads, then runs exactly the lab's command

    /usr/bin/time -v bash scripts/run_standalone_train_cpu.sh --train_manifest CSV --epochs 1 --save_dir RUN

(the full model, the lab's batch 20, the default config; options after `--` are passed on, e.g.
`-- --set TrainingConfig.micro_batch_seconds=0`). Prints the host, the number of distinct padded lengths
(buckets) the epoch met, steps, wall time, audio seconds per second and the peak RSS `/usr/bin/time -v`
reports for the whole process, and appends a JSON record to bench/results/lab_epoch_history.jsonl.
Exit status: that of the training run (0 when the epoch completed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.train_speed import append_history, git_commit, library_versions, start_run  # noqa: E402
from tools.make_sample_corpus import VOICES, make_sentence, synthesize  # noqa: E402

HISTORY = REPO_ROOT / "bench" / "results" / "lab_epoch_history.jsonl"
SAMPLE_RATE = 16000
PAUSE_S = 0.25
STEP_LINE = re.compile(r"epoch: \d+ step: \d+")


def make_clip(job: tuple) -> tuple[str, str]:
    """(index, target seconds, folder, seed) -> (wav path, txt path): sentences until the target, then silence."""
    import soundfile as sf

    index, target, folder, seed = job
    rng = random.Random(seed * 100003 + index)
    voice, speed, pitch = rng.choice(VOICES), rng.randint(150, 190), rng.randint(30, 70)
    pieces, words, used = [], [], 0
    while True:
        text = make_sentence(rng)
        audio = synthesize(text, voice, speed, pitch)
        if words and used + len(audio) > target * SAMPLE_RATE:
            break
        audio = audio[: int(target * SAMPLE_RATE)]  # one sentence longer than a short target: cut (rare at 1 s)
        pieces += [audio, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
        words.append(text)
        used += len(audio) + int(PAUSE_S * SAMPLE_RATE)
        if used >= target * SAMPLE_RATE:
            break
    samples = np.concatenate(pieces)[: int(target * SAMPLE_RATE)]
    samples = np.pad(samples, (0, int(target * SAMPLE_RATE) - len(samples)))
    wav, txt = Path(folder) / f"clip{index:05d}.wav", Path(folder) / f"clip{index:05d}.txt"
    sf.write(str(wav), np.clip(samples, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    txt.write_text(" ".join(words) + "\n")
    return str(wav), str(txt)


def clip_lengths(clips: int, low: float, high: float, lengths: str = "") -> list[float]:
    """Target seconds of every clip: evenly spread over [low, high], or `lengths` ("2,4,6") repeated in turn."""
    if lengths:
        chosen = [float(x) for x in lengths.split(",")]
        return [chosen[i % len(chosen)] for i in range(clips)]
    return [float(x) for x in np.round(np.linspace(low, high, clips), 2)]


def make_corpus(folder: Path, targets: list[float], seed: int) -> Path:
    """The clips (one per target length) and their CSV manifest (`wav,txt` rows) in `folder`; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(i, float(t), str(folder), seed) for i, t in enumerate(targets)]
    with multiprocessing.Pool() as pool:
        rows = pool.map(make_clip, jobs)
    manifest = folder / "train.csv"
    manifest.write_text("".join(f"{wav},{txt}\n" for wav, txt in rows))
    return manifest


def peak_rss_gb(time_report: str) -> float | None:
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_report)
    return int(found.group(1)) / 2**20 if found else None


def run_epoch(manifest: Path, run_dir: Path, extra: list[str]) -> dict:
    """The lab's launcher under /usr/bin/time -v; its log, exit status, wall time and peak RSS."""
    cmd = ["/usr/bin/time", "-v", "bash", str(REPO_ROOT / "scripts" / "run_standalone_train_cpu.sh")]
    cmd += ["--train_manifest", str(manifest), "--epochs", "1", "--save_dir", str(run_dir), *extra]
    print("running:", " ".join(cmd), flush=True)
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=run_dir.parent, check=False)
    wall = time.time() - started
    (run_dir.parent / "time_v.txt").write_text(proc.stderr)
    (run_dir.parent / "stdout.txt").write_text(proc.stdout)
    return {"returncode": proc.returncode, "wall_s": wall, "peak_rss_gb": peak_rss_gb(proc.stderr), "log": proc.stdout}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--min_seconds", type=float, default=1.0)
    parser.add_argument("--max_seconds", type=float, default=17.0)
    parser.add_argument("--lengths", default="", help="clip seconds to cycle through instead of the even spread")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="", help="folder for the corpus and the run (default: a new temp dir)")
    parser.add_argument("--history", default=str(HISTORY))
    args = parser.parse_args(own)
    work = Path(args.work or tempfile.mkdtemp(prefix="lab_epoch_")).resolve()
    host, _ = start_run(None, 0, library_versions(), all_sides=("project",))
    started = time.time()
    targets = clip_lengths(args.clips, args.min_seconds, args.max_seconds, args.lengths)
    manifest = make_corpus(work / "corpus", targets, args.seed)
    audio_s = sum(targets)
    print(
        f"corpus: {args.clips} clips, {min(targets)}-{max(targets)} s, {audio_s / 3600:.2f} h of audio "
        f"({time.time() - started:.0f} s to make): {manifest}",
        flush=True,
    )
    run_dir = work / "run"
    result = run_epoch(manifest, run_dir, extra)
    steps = len(STEP_LINE.findall(result.pop("log")))
    buckets = _buckets(manifest, extra)
    print(
        f"exit status {result['returncode']}; {steps} steps; distinct padded lengths: {len(buckets)} "
        f"({', '.join(f'{s:.2f}' for s in buckets)} s)"
    )
    print(
        f"wall {result['wall_s']:.0f} s (compilation included), {audio_s / result['wall_s']:.2f} audio-s/s; "
        f"peak RSS {result['peak_rss_gb']:.2f} GB (/usr/bin/time -v; report in {work / 'time_v.txt'})"
    )
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": host,
        "commit": git_commit(),
        "clips": args.clips,
        "seconds": [args.min_seconds, args.max_seconds],
        "extra": extra,
        "steps": steps,
        "buckets_s": buckets,
        **result,
    }
    append_history(Path(args.history), record)
    return result["returncode"]


def _buckets(manifest: Path, extra: list[str]) -> list[float]:
    """The distinct padded lengths (s) of the epoch's batches, planned as train.py plans them: its config from
    the same arguments (the options passed on included)."""
    from src import shapes
    from src.cli import build_train_config
    from src.dataset import batch_length, training_dataset
    from src.text import load_labels
    from train import parse_args

    cfg = build_train_config(parse_args(["--train_manifest", str(manifest), *extra]))
    data = training_dataset(cfg.DataConfig, load_labels(cfg.DataConfig.labels_path), cfg.TrainingConfig.seed)
    frames = [u.frames for u in data.utts]
    stride = cfg.DataConfig.SpectConfig.window_stride
    lengths = {batch_length(b, frames) for b in data.epoch_batches(0)}
    return sorted(round(shapes.frames_to_seconds(n, stride), 2) for n in lengths)


if __name__ == "__main__":
    sys.exit(main())
