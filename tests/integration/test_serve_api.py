"""serve.py over real HTTP and WebSocket connections (requests, aiohttp's client) against a running server with a
tiny random model: uploads and live streams give exactly transcribe.py's text and word times, bad uploads get the
documented statuses, and a client that goes away leaves the server idle."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import time

import numpy as np
import pytest
import soundfile as sf

from tests.integration.conftest import SERVE_OPTIONS

requests = pytest.importorskip("requests")
aiohttp = pytest.importorskip("aiohttp")
pytestmark = pytest.mark.mindspore


def transcribe_py(model, clip, tmp_path) -> dict:
    """transcribe.py's JSON document for one file, with the server's decoding options."""
    transcribe = importlib.import_module("transcribe")
    out = tmp_path / "out"
    argv = [str(clip), "--model_path", str(model), "--format", "json", "--output_dir", str(out)]
    assert transcribe.main([*argv, *SERVE_OPTIONS[:2]]) == 0
    return json.loads((out / f"{clip.stem}.json").read_text())


def post(url: str, content: bytes, name: str = "clip.wav", timeout: float = 60):
    return requests.post(f"{url}/v1/transcribe", files={"file": (name, content)}, timeout=timeout)


def test_upload_equals_transcribe_py(serve_url, tiny_model, speech_clips, tmp_path) -> None:
    clip = speech_clips["flac"]
    response = post(serve_url, clip.read_bytes(), "speech.flac")
    assert response.status_code == 200, response.text
    doc = response.json()
    reference = transcribe_py(tiny_model, clip, tmp_path)
    assert doc["model"] == "tiny.ckpt"
    assert len(reference["words"]) >= 3 and len(reference["segments"]) >= 3  # words, and a 7 s file cut at 3 s
    assert doc["text"] == reference["text"]
    assert doc["words"] == reference["words"]
    assert doc["duration"] == reference["duration"] and doc["segments"] == reference["segments"]
    assert set(doc["words"][0]) == {"word", "start", "end"}


async def stream_clip(url: str, pcm: bytes, chunk: int, pause: float) -> list[dict]:
    """Send int16 PCM over /v1/stream in `chunk`-byte messages `pause` s apart, then "end"; all replies."""
    replies = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url.replace("http", "ws") + "/v1/stream") as ws:
        for i in range(0, len(pcm), chunk):
            await ws.send_bytes(pcm[i : i + chunk])
            await asyncio.sleep(pause)
        await ws.send_str("end")
        async for msg in ws:
            replies.append(json.loads(msg.data))
    return replies


def test_stream_partials_then_final_equal_to_the_file(serve_url, tiny_model, speech_clips, tmp_path) -> None:
    clip = speech_clips["wav"]
    samples, rate = sf.read(str(clip), dtype="int16")
    assert rate == 16000
    # 0.5 s of audio every 0.15 s (odd byte counts: a sample split across messages must be joined)
    replies = asyncio.run(stream_clip(serve_url, samples.astype("<i2").tobytes(), 16001, 0.15))
    kinds = [r["type"] for r in replies]
    assert kinds[-1] == "final" and kinds.count("final") == 1
    assert kinds[:-1] and set(kinds[:-1]) == {"partial"}, kinds  # partials came before the final
    final = replies[-1]
    reference = transcribe_py(tiny_model, clip, tmp_path)
    assert final["text"] == reference["text"] and final["words"] == reference["words"]
    assert final["duration"] == reference["duration"]
    assert replies[-2]["duration"] < final["duration"]  # the partials were of the audio so far


def test_stream_rejects_text_instead_of_audio(serve_url) -> None:
    async def talk() -> list[dict]:
        async with aiohttp.ClientSession() as session, session.ws_connect(serve_url + "/v1/stream") as ws:
            await ws.send_str("hello")
            return [json.loads(msg.data) async for msg in ws]

    (reply,) = asyncio.run(talk())
    assert reply["type"] == "error" and reply["status"] == 400 and "int16 PCM" in reply["error"]


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("garbage", 400, "not audio"),
        ("empty", 400, "empty"),
        ("oversize", 413, "exceeds the limit of 0.5 MB"),
        ("too_long", 413, "the limit is 10 s"),
        ("no_file_field", 400, "no field named 'file'"),
        ("not_multipart", 400, "multipart/form-data"),
    ],
)
def test_bad_uploads_get_json_errors(serve_url, tmp_path, case, status, message) -> None:
    if case == "garbage":
        response = post(serve_url, np.random.default_rng(0).bytes(5000), "noise.wav")
    elif case == "empty":
        response = post(serve_url, b"")
    elif case == "oversize":
        response = post(serve_url, b"\0" * (600 * 1024))
    elif case == "too_long":
        sf.write(str(tmp_path / "long.wav"), np.zeros(12 * 8000, np.int16), 8000)  # 12 s, 192 kB
        response = post(serve_url, (tmp_path / "long.wav").read_bytes())
    elif case == "no_file_field":
        response = requests.post(f"{serve_url}/v1/transcribe", files={"audio": ("a.wav", b"x")}, timeout=30)
    else:
        response = requests.post(f"{serve_url}/v1/transcribe", data=b"RIFF", timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    assert doc["status"] == status and message in doc["error"]
    assert "Traceback" not in response.text


def test_health_page_and_unknown_routes(serve_url) -> None:
    health = requests.get(f"{serve_url}/health", timeout=10).json()
    assert health["status"] == "ok" and health["model"] == "tiny.ckpt" and health["limits"]["max_upload_mb"] == 0.5
    page = requests.get(f"{serve_url}/", timeout=10)
    assert page.status_code == 200 and 'id="record"' in page.text
    assert "AudioWorkletNode" in requests.get(f"{serve_url}/app.js", timeout=10).text
    missing = requests.get(f"{serve_url}/../serve.py", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"


@pytest.mark.parametrize("sent", ["half the file", "the whole request"])
def test_client_hanging_up_leaves_the_server_idle(serve_url, speech_clips, sent) -> None:
    body = speech_clips["wav"].read_bytes()
    form = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + body + b"\r\n--b--\r\n"
    head = (
        "POST /v1/transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode()
    port = int(serve_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + (form[: len(form) // 2] if sent == "half the file" else form))
    for _ in range(300):  # the abandoned job finishes or is dropped; no timing is asserted
        if requests.get(f"{serve_url}/health", timeout=10).json()["queued"] == 0:
            break
        time.sleep(0.1)
    assert requests.get(f"{serve_url}/health", timeout=10).json()["queued"] == 0
    assert post(serve_url, body).status_code == 200  # and it still serves
