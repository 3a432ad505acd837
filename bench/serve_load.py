"""Load-test serve.py: N concurrent clients post real clips for a while; throughput, latency, server memory, and
every request accounted for (answered, rejected with a status, failed), then the live stream's final latency.

Starts `serve.py --port 0` with the given model (extra server options after `--`), waits for it, runs the load,
samples the server's RSS from /proc every 0.5 s (Linux), then streams a few clips over /v1/stream at real-time pace
and times end of speech (the "end" message after the last chunk) to the final transcript, with the server idle.
Clips: the files given with --clips, or a few sentences spoken by espeak-ng (tools/make_sample_corpus.py).

    python bench/serve_load.py --model_path run/tiny.ckpt --clients 8 --seconds 60
    python bench/serve_load.py --model_path model.onnx --clips a.wav b.flac -- --queue_size 4
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python bench/serve_load.py`: make the repo importable
    sys.path.insert(0, str(REPO))

SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "she sells sea shells by the sea shore",
    "speech recognition turns sound into text",
    "please call me back when you get this message",
)


@dataclass
class Tally:
    """Every request sent, by outcome; latencies of the answered ones."""

    sent: int = 0
    statuses: Counter = field(default_factory=Counter)  # HTTP status -> count
    failures: Counter = field(default_factory=Counter)  # no HTTP answer: exception name -> count
    latencies: list[float] = field(default_factory=list)  # seconds, status 200 only


def make_clips(folder: Path) -> list[Path]:
    from tools.make_sample_corpus import synthesize

    clips = []
    for i, text in enumerate(SENTENCES):
        clips.append(folder / f"clip{i}.wav")
        sf.write(str(clips[-1]), synthesize(text, "en", 150, 50), 16000, subtype="PCM_16")
    return clips


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MiB, from /proc/PID/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(model: str, extra: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(REPO / "serve.py"), "--model_path", model, "--port", "0", *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    line = proc.stdout.readline()  # the server prints its address once it listens
    match = re.search(r"(http://[\d.]+:\d+)/", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"serve.py did not start: {line!r} {log.read_text()[-1500:]}")
    return proc, match.group(1)


async def client(
    session, url: str, clips: list[bytes], offset: int, stop_at: float, tally: Tally, backoff: float
) -> None:
    import aiohttp

    i = offset
    while time.monotonic() < stop_at:
        form = aiohttp.FormData()
        form.add_field("file", clips[i % len(clips)], filename="clip.wav", content_type="audio/wav")
        i += 1
        tally.sent += 1
        start = time.monotonic()
        try:
            async with session.post(f"{url}/v1/transcribe", data=form) as response:
                await response.read()
                tally.statuses[response.status] += 1
                if response.status == 200:
                    tally.latencies.append(time.monotonic() - start)
                elif response.status == 503:  # a polite client backs off instead of hammering a full queue
                    await asyncio.sleep(backoff)
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            tally.failures[type(err).__name__] += 1


async def watch_rss(pid: int, samples: list, stop: asyncio.Event) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - t0, *rss_mb(pid)))
        await asyncio.sleep(0.5)


async def run_load(
    url: str, pid: int, clips: list[bytes], clients: int, seconds: float, backoff: float
) -> tuple[Tally, list]:
    import aiohttp

    tally, samples, stop = Tally(), [], asyncio.Event()
    watcher = asyncio.create_task(watch_rss(pid, samples, stop))
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)) as session:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(client(session, url, clips, k, stop_at, tally, backoff) for k in range(clients)))
    stop.set()
    await watcher
    return tally, samples


async def stream_once(url: str, pcm: np.ndarray, chunk_s: float = 0.1) -> tuple[float, int, str]:
    """Send int16 PCM at real-time pace; returns (end of speech -> final seconds, partials seen, final text)."""
    import aiohttp

    step, partials = int(16000 * chunk_s), 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url.replace("http", "ws") + "/v1/stream") as ws:

        async def receive():
            nonlocal partials
            async for msg in ws:
                doc = msg.json()
                if doc["type"] != "partial":
                    return doc, time.monotonic()
                partials += 1
            return {"type": "closed", "text": ""}, time.monotonic()

        reader = asyncio.create_task(receive())
        for i in range(0, len(pcm), step):
            await ws.send_bytes(pcm[i : i + step].astype("<i2").tobytes())
            await asyncio.sleep(chunk_s)
        ended = time.monotonic()
        await ws.send_str("end")
        doc, arrived = await reader
    return arrived - ended, partials, doc.get("text", doc.get("error", ""))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(tally: Tally, samples: list, seconds: float, warmup: float) -> None:
    answered, rejected = tally.statuses.get(200, 0), tally.statuses.get(503, 0)
    other = sum(n for s, n in tally.statuses.items() if s not in (200, 503))
    failed = sum(tally.failures.values())
    warm = [s for s in samples if s[0] >= warmup] or samples
    lat = tally.latencies
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    print(f"requests sent {tally.sent}: answered (200) {answered}, rejected (503) {rejected}, other statuses {other}")
    print(f"  failed without a status {failed} {dict(tally.failures) or ''}")
    print(f"  accounted for {answered + rejected + other + failed} of {tally.sent}")
    print(f"throughput {answered / seconds:.2f} answered requests/s over {seconds:.0f} s")
    print(f"latency of answered requests: p50 {p50:.3f} s, p95 {p95:.3f} s, max {max(lat, default=0):.3f} s")
    low, high = min(s[1] for s in warm), max(s[1] for s in warm)
    print(f"server RSS: after {warmup:.0f} s warm-up {warm[0][1]:.0f} MiB, at the end {samples[-1][1]:.0f} MiB")
    print(f"  min/max after warm-up {low:.0f}/{high:.0f} MiB, peak over the run (VmHWM) {samples[-1][2]:.0f} MiB")


def measure_streams(url: str, clips: list[Path], count: int) -> None:
    """Time a few live sessions (16 kHz clips only), one after another."""
    pcm = [sf.read(str(c), dtype="int16")[0] for c in clips if sf.info(str(c)).samplerate == 16000]
    latencies = []
    for k in range(min(count, len(pcm))):
        latency, partials, text = asyncio.run(stream_once(url, pcm[k]))
        latencies.append(latency)
        seconds = len(pcm[k]) / 16000
        print(f"stream {k}: {seconds:.1f} s sent at real-time pace, {partials} partials, final {text[:40]!r}")
        print(f"  end of speech -> final transcript {latency:.3f} s")
    if latencies:
        print(f"live final latency: median {np.median(latencies):.3f} s over {len(latencies)} sessions, server idle")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the RSS baseline")
    parser.add_argument("--clips", nargs="*", default=None, help="audio files to post (default: espeak-ng sentences)")
    parser.add_argument("--backoff", type=float, default=0.5, help="seconds a client waits after a 503")
    parser.add_argument("--streams", type=int, default=3, help="live sessions timed after the load")
    parser.add_argument("server_args", nargs="*", help="options for serve.py, after --")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        clips = [Path(c) for c in args.clips] if args.clips else make_clips(Path(tmp))
        proc, url = start_server(args.model_path, args.server_args, Path(tmp) / "server.log")
        try:
            audio_s = [sf.info(str(c)).duration for c in clips]
            print(
                f"server {url}, {len(clips)} clips of {min(audio_s):.1f}-{max(audio_s):.1f} s, {args.clients} clients"
            )
            tally, samples = asyncio.run(
                run_load(url, proc.pid, [c.read_bytes() for c in clips], args.clients, args.seconds, args.backoff)
            )
            report(tally, samples, args.seconds, args.warmup)
            measure_streams(url, clips, args.streams)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
