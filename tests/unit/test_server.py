"""src/server.py's model queue and src/live.py without MindSpore: a full queue answers 503 at once, a job whose
caller has gone is dropped before it runs, and a live stream pushed in any chunking gives the file's transcript."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("aiohttp")

from src import shapes  # noqa: E402
from src import transcription as T  # noqa: E402
from src.config import SpectConfig  # noqa: E402
from src.greedydecoder import GreedyCTCDecoder  # noqa: E402
from src.live import LiveTranscript, pcm16_to_float  # noqa: E402
from src.server import ApiError, Limits, ModelQueue  # noqa: E402
from tests.unit.test_transcription import fake_predict, tone_file  # noqa: E402


def test_full_queue_answers_503_and_frees_its_places() -> None:
    async def scenario() -> tuple[list, int]:
        queue, gate = ModelQueue(size=2), threading.Event()
        first = asyncio.ensure_future(queue.run(gate.wait, 30))
        second = asyncio.ensure_future(queue.run(lambda: "second"))
        await asyncio.sleep(0)
        with pytest.raises(ApiError) as busy:
            await queue.run(lambda: "third")
        gate.set()
        results = [await first, await second, busy.value.status]
        await asyncio.sleep(0.05)  # the done callbacks hop back to the loop
        queue.close()
        return results, queue.pending

    results, pending = asyncio.run(scenario())
    assert results == [True, "second", 503]
    assert pending == 0


def test_a_cancelled_waiting_job_never_runs() -> None:
    ran = []

    async def scenario() -> int:
        queue, gate = ModelQueue(size=4), threading.Event()
        blocker = asyncio.ensure_future(queue.run(gate.wait, 30))
        waiting = asyncio.ensure_future(queue.run(ran.append, "late"))
        await asyncio.sleep(0.05)
        waiting.cancel()  # what aiohttp does to a handler whose client hung up
        await asyncio.sleep(0.05)
        gate.set()
        await blocker
        await asyncio.sleep(0.05)
        queue.close()
        return queue.pending

    assert asyncio.run(scenario()) == 0
    assert ran == []


def test_limits_reject_non_positive_values() -> None:
    with pytest.raises(ValueError, match="--queue_size must be positive"):
        Limits(queue_size=0).validate()


def test_pcm16_decodes_like_libsndfile(tmp_path) -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 1234], np.int16)
    sf.write(str(tmp_path / "a.wav"), samples, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(pcm16_to_float(samples.astype("<i2").tobytes()), sf.read(str(tmp_path / "a.wav"))[0])


@pytest.mark.parametrize("chunk", [160, 4097, 48000])
def test_live_stream_in_any_chunks_equals_the_file(tmp_path, labels, chunk) -> None:
    transcriber = T.Transcriber(T.SegmentPredictor(fake_predict(labels)), GreedyCTCDecoder(labels), SpectConfig(), 4.0)
    path = tone_file(tmp_path / "tones.wav", 11.0, bursts=(0.5, 2.0, 3.9, 6.1, 9.0))
    audio, _ = sf.read(str(path), dtype="float32")
    live = LiveTranscript(transcriber)
    partial_words = []
    for i in range(0, len(audio), chunk):
        live.push(audio[i : i + chunk])
        if i % 32000 < chunk:  # a partial about every 2 s
            partial_words.append(len(live.decode().words))
    final, reference = live.decode(), transcriber.transcribe(path)
    assert len(reference.segments) >= 3 and len(reference.words) == 5
    assert T.to_document(final) == {**T.to_document(reference), "path": "stream"}
    assert partial_words == sorted(partial_words) and partial_words[0] < 5  # partials grew with the audio


def test_a_full_queue_answers_503_over_http(tmp_path, labels) -> None:
    """A real server (aiohttp's TestServer on a loopback port) whose one model place is taken answers 503."""
    from aiohttp import ClientSession, FormData
    from aiohttp.test_utils import TestServer

    from src.server import QUEUE, build_app

    transcriber = T.Transcriber(T.SegmentPredictor(fake_predict(labels)), GreedyCTCDecoder(labels), SpectConfig(), 4.0)
    gate, real = threading.Event(), transcriber.transcribe
    transcriber.transcribe = lambda *a: (gate.wait(30), real(*a))[1]  # hold the model until released
    clip = tone_file(tmp_path / "t.wav", 2.0, bursts=(0.5,)).read_bytes()

    async def scenario():
        server = TestServer(build_app(transcriber, "fake", Limits(queue_size=1)), host="127.0.0.1")
        await server.start_server()
        url = str(server.make_url("/v1/transcribe"))
        try:
            async with ClientSession() as session:

                async def post():
                    form = FormData()
                    form.add_field("file", clip, filename="t.wav")
                    async with session.post(url, data=form) as r:
                        return r.status, r.headers.get("Retry-After"), await r.json()

                first = asyncio.ensure_future(post())
                while server.app[QUEUE].pending == 0:  # the first request holds the model
                    await asyncio.sleep(0.01)
                second = await post()
                gate.set()
                return await first, second
        finally:
            await server.close()

    first, second = asyncio.run(scenario())
    assert first[0] == 200 and first[2]["words"] and first[2]["model"] == "fake"
    assert second[0] == 503 and second[1] == "1"
    assert second[2]["status"] == 503 and "busy" in second[2]["error"]


def test_warm_up_runs_every_width_a_segment_can_need_once(labels) -> None:
    widths = []
    predict = fake_predict(labels)

    def spy(features, lengths):
        widths.append(features.shape[-1])
        return predict(features, lengths)

    transcriber = T.Transcriber(T.SegmentPredictor(spy), GreedyCTCDecoder(labels), SpectConfig(), 4.0)
    count = transcriber.warm_up()
    needed = {shapes.bucket_length(t) for t in range(2, 4 * 16000 // 160 + 2)}  # 1 .. 401 frames
    assert count == len(widths) == len(needed) and set(widths) == needed
    exported = T.Transcriber(T.SegmentPredictor(spy, frames=401), GreedyCTCDecoder(labels), SpectConfig(), 4.0)
    assert exported.warm_up() == 1  # a static input: one width
