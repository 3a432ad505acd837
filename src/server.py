"""The transcription server (aiohttp): one loaded Transcriber behind an HTTP API, a live WebSocket and a web page.

Routes:
    POST /v1/transcribe  multipart/form-data, field `file`: any audio transcribe.py reads -> the JSON document
                         transcribe.py --format json writes, less `path`, plus `model`.
    WS   /v1/stream      binary messages of 16 kHz mono little-endian int16 PCM; the text message "end" asks for
                         the final transcript. Partial transcripts come about once a second (see src/live.py).
    GET  /health         status, model, queue use and the limits.
    GET  /               the page (src/web/index.html and its scripts; fixed routes, no client-named files).

The model runs in one worker thread; at most `queue_size` requests wait for it or run on it, and one more gets
503 at once. Uploads are read into memory (capped at `max_upload_mb`), never written to disk, so nothing is left
behind when a client goes away; a request that disconnects while it waits is cancelled before it reaches the model.
Every error is a JSON `{"error": message, "status": code}`; an unexpected exception is logged here and answered with
a 500 that carries no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from aiohttp import WSMsgType, web

from src.audio import AudioError
from src.live import LiveTranscript, pcm16_to_float
from src.transcription import Transcriber, Transcript, open_audio, to_document

logger = logging.getLogger(__name__)
T = TypeVar("T")

WEB_DIR = Path(__file__).resolve().parent / "web"
PAGES = {  # URL -> (file under WEB_DIR, content type): the only files the server ever reads for a client
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/recorder-worklet.js": ("recorder-worklet.js", "text/javascript"),
}
MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file in a multipart body


@dataclass
class Limits:
    """What one client may ask of the server."""

    max_upload_mb: float = 20.0  # bytes of one uploaded file
    max_seconds: float = 600.0  # audio duration of one upload
    queue_size: int = 8  # requests waiting for or running on the model
    stream_seconds: float = 300.0  # audio of one live session
    partial_every: float = 1.0  # seconds between partial transcripts of a live session

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def validate(self) -> None:
        for key, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"--{key} must be positive, got {value}")


class ApiError(Exception):
    """An answer to a bad request: HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ModelQueue:
    """One worker thread owns the model; at most `size` jobs wait or run, the next one gets ApiError(503)."""

    def __init__(self, size: int) -> None:
        self.size, self.pending = size, 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def run(self, fn: Callable[..., T], *args) -> T:
        """fn(*args) on the model thread. Cancelling the caller before the job starts drops the job."""
        if self.pending >= self.size:
            raise ApiError(503, f"the server is busy ({self.pending} requests queued); try again shortly")
        loop = asyncio.get_running_loop()
        future = self.executor.submit(fn, *args)
        self.pending += 1
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release))
        return await asyncio.wrap_future(future)

    def _release(self) -> None:
        self.pending -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


TRANSCRIBER = web.AppKey("transcriber", Transcriber)
QUEUE = web.AppKey("queue", ModelQueue)
LIMITS = web.AppKey("limits", Limits)
MODEL = web.AppKey("model", str)


def response_document(transcript: Transcript, model: str) -> dict:
    """What the API answers for a transcript: transcribe.py's JSON document without the path, plus the model."""
    doc = to_document(transcript)
    doc.pop("path")
    doc["model"] = model
    return doc


def error_response(status: int, message: str) -> web.Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err.status, err.message)
    except web.HTTPException as err:  # aiohttp's own: 404, 405, 413 ...
        if err.status < 400:
            raise
        return error_response(err.status, err.reason)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal error while transcribing; the server log has the details")


# ------------------------------------------------------------------------------------------------------ uploads
async def read_upload(request: web.Request, max_bytes: int) -> bytes:
    """The bytes of the multipart field `file`, refusing more than `max_bytes` (413) or a missing field (400)."""
    too_big = ApiError(413, f"the upload exceeds the limit of {max_bytes / 1048576:g} MB")
    if request.content_length is not None and request.content_length > max_bytes + MULTIPART_SLACK:
        raise too_big
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, "send the audio as multipart/form-data in a field named 'file'")
    reader = await request.multipart()
    async for part in reader:
        if getattr(part, "name", None) != "file":
            await part.release()
            continue
        data = bytearray()
        while chunk := await part.read_chunk(1 << 16):
            data += chunk
            if len(data) > max_bytes:
                raise too_big
        return bytes(data)
    raise ApiError(400, "no field named 'file' in the form")


def check_audio(data: bytes, max_seconds: float) -> None:
    """400 for bytes that are empty or not audio, 413 for audio longer than `max_seconds`."""
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    try:
        f, _ = open_audio(io.BytesIO(data), "upload")
    except AudioError as err:
        raise ApiError(400, f"the upload is not audio this server can read: {err}") from None
    with f:
        frames, rate = f.frames, f.samplerate
    if frames <= 0:
        raise ApiError(400, "the uploaded file holds no audio samples")
    if frames / rate > max_seconds:
        raise ApiError(413, f"the audio lasts {frames / rate:.1f} s; the limit is {max_seconds:g} s")


async def transcribe_upload(request: web.Request) -> web.Response:
    app = request.app
    data = await read_upload(request, app[LIMITS].max_bytes)
    check_audio(data, app[LIMITS].max_seconds)
    try:
        transcript = await app[QUEUE].run(app[TRANSCRIBER].transcribe, io.BytesIO(data), "upload")
    except AudioError as err:  # decodable header, broken body
        raise ApiError(400, str(err)) from None
    return web.json_response(response_document(transcript, app[MODEL]))


# --------------------------------------------------------------------------------------------------------- live
async def stream(request: web.Request) -> web.WebSocketResponse:
    """Live transcription over a WebSocket: PCM in, {"type": "partial"|"final"|"error", ...} out."""
    app = request.app
    limits, queue = app[LIMITS], app[QUEUE]
    ws = web.WebSocketResponse(max_msg_size=1 << 20)
    await ws.prepare(request)
    live = LiveTranscript(app[TRANSCRIBER])
    loop = asyncio.get_running_loop()
    last_partial, odd = loop.time(), b""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            data = odd + msg.data
            odd = data[len(data) // 2 * 2 :]  # an int16 split across two messages
            live.push(pcm16_to_float(data[: len(data) // 2 * 2]))
            if live.seconds > limits.stream_seconds:
                await _send_error(ws, 413, f"a live session is limited to {limits.stream_seconds:g} s of audio")
                break
            if loop.time() - last_partial >= limits.partial_every:
                last_partial = loop.time()
                try:
                    partial = await queue.run(live.decode)
                except ApiError:
                    continue  # busy: skip this partial, the next one catches up
                await ws.send_json({"type": "partial", **response_document(partial, app[MODEL])})
        elif msg.type == WSMsgType.TEXT and msg.data.strip() == "end":
            try:
                final = await queue.run(live.decode)
            except ApiError as err:
                await _send_error(ws, err.status, err.message)
                break
            await ws.send_json({"type": "final", **response_document(final, app[MODEL])})
            break
        elif msg.type == WSMsgType.TEXT:
            await _send_error(ws, 400, 'send binary 16 kHz mono int16 PCM, then the text message "end"')
            break
    await ws.close()
    return ws


async def _send_error(ws: web.WebSocketResponse, status: int, message: str) -> None:
    await ws.send_json({"type": "error", "error": message, "status": status})


# --------------------------------------------------------------------------------------------------- the rest
async def health(request: web.Request) -> web.Response:
    app = request.app
    return web.json_response(
        {"status": "ok", "model": app[MODEL], "queued": app[QUEUE].pending, "limits": asdict(app[LIMITS])}
    )


async def page(request: web.Request) -> web.Response:
    name, content_type = PAGES[request.path]
    return web.Response(body=(WEB_DIR / name).read_bytes(), content_type=content_type)


def build_app(transcriber: Transcriber, model: str, limits: Limits) -> web.Application:
    """The aiohttp application; its model queue closes with it."""
    app = web.Application(middlewares=[json_errors], client_max_size=limits.max_bytes + MULTIPART_SLACK)
    app[TRANSCRIBER], app[MODEL], app[LIMITS] = transcriber, model, limits
    app[QUEUE] = ModelQueue(limits.queue_size)
    app.router.add_post("/v1/transcribe", transcribe_upload)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/health", health)
    for url in PAGES:
        app.router.add_get(url, page)

    async def close_queue(app: web.Application) -> None:
        app[QUEUE].close()

    app.on_cleanup.append(close_queue)
    return app


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """serve.py's own options (argparse)."""
    defaults = Limits()
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed at start)")
    parser.add_argument("--max_upload_mb", type=float, default=defaults.max_upload_mb)
    parser.add_argument("--max_seconds", type=float, default=defaults.max_seconds, help="longest upload (audio s)")
    parser.add_argument("--queue_size", type=int, default=defaults.queue_size, help="requests waiting + running")
    parser.add_argument("--stream_seconds", type=float, default=defaults.stream_seconds)
    parser.add_argument("--partial_every", type=float, default=defaults.partial_every)
    parser.add_argument(
        "--warmup", action="store_true", help="compile every input width before listening (checkpoints: ~1 min)"
    )


def limits_from_args(args: argparse.Namespace) -> Limits:
    limits = Limits(args.max_upload_mb, args.max_seconds, args.queue_size, args.stream_seconds, args.partial_every)
    limits.validate()
    return limits


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        bound = runner.addresses[0]
        print(f"serving http://{bound[0]}:{bound[1]}/ (Ctrl-C stops)", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(transcriber: Transcriber, model: str, host: str, port: int, limits: Limits, warmup: bool = False) -> None:
    """Run the server until SIGINT/SIGTERM. Raises OSError when the address cannot be bound.

    Args:
        warmup: run every input width through the model first, so no request waits for a graph compilation.
    """
    if warmup:
        started = time.monotonic()
        count = transcriber.warm_up()
        logger.warning("warm-up: %d input widths in %.1f s", count, time.monotonic() - started)
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: other machines can reach this server (it has no authentication)", host)
    asyncio.run(_serve(build_app(transcriber, model, limits), host, port))
