"""src/transcription.py and transcribe.py with a fake predict function (no MindSpore): bounded block reads,
quiet cuts, word times offset by segment start, static-input limits, SRT/JSON/text output, per-file errors and
the exit status."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import soundfile as sf

from src import shapes
from src import transcription as T
from src.audio import load_audio
from src.config import SpectConfig
from src.greedydecoder import GreedyCTCDecoder

SR = 16000
BURSTS = (1.0, 14.2, 20.0, 33.5, 41.0)  # seconds where a 0.3 s tone starts: some land near segment limits


def tone_file(path, seconds: float, bursts=BURSTS, sr: int = SR, channels: int = 1, fmt: str | None = None):
    """Silence with 0.3 s 440 Hz bursts at `bursts` seconds."""
    audio = np.zeros(int(seconds * sr), np.float32)
    t = np.arange(int(0.3 * sr)) / sr
    for start in bursts:
        i = int(start * sr)
        audio[i : i + len(t)] = 0.5 * np.sin(2 * np.pi * 440 * t)[: len(audio) - i]
    data = np.repeat(audio[:, None], channels, axis=1) if channels > 1 else audio
    sf.write(str(path), data, sr, format=fmt)
    return path


def fake_predict(labels: list[str]):
    """A 'network' that writes 'A' for loud frames and a space for quiet ones: each burst becomes one word."""

    def predict(features: np.ndarray, lengths: np.ndarray):
        n, _, _, t = features.shape
        t_out = shapes.output_length(t)
        peak = features[:, 0, :, ::2].max(axis=1)[:, :t_out]  # (N, T'); silence is the clip's minimum everywhere
        loud = peak > features.min(axis=(1, 2, 3))[:, None] + 1.0
        probs = np.full((n, t_out, len(labels)), 1e-3, np.float32)
        probs[..., labels.index("A")] += loud * 10
        probs[..., labels.index(" ")] += ~loud * 10
        out = np.array([shapes.output_length(int(x)) for x in lengths], np.int32)
        return probs / probs.sum(-1, keepdims=True), out

    return predict


@pytest.fixture()
def transcriber(labels) -> T.Transcriber:
    return T.Transcriber(T.SegmentPredictor(fake_predict(labels)), GreedyCTCDecoder(labels), SpectConfig(), 15.0)


def test_quiet_cut_finds_the_pause() -> None:
    audio = np.ones(1000, np.float32)
    audio[600:650] = 0.0
    assert 600 <= T.quiet_cut(audio, 400, 900, 20) <= 650
    assert T.quiet_cut(audio, 400, 420, 50) == 420  # window wider than the range: cut at its end


def test_streaming_reads_bounded_blocks_and_segments(tmp_path, monkeypatch) -> None:
    path = tone_file(tmp_path / "long.wav", 50.0)
    sizes = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        sizes.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    segments = list(T.iter_segments(path, SR, max_seconds=15.0, block_frames=4096))
    assert sizes and max(sizes) == 4096 and -1 not in sizes  # never "read everything"
    assert all(len(s.audio) <= 15 * SR for s in segments)
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    for a, b in zip(segments, segments[1:]):  # contiguous, no overlap
        assert b.start == pytest.approx(a.start + len(a.audio) / SR)
    assert sum(len(s.audio) for s in segments) == 50 * SR


def test_one_segment_file_matches_load_audio(tmp_path) -> None:
    path = tone_file(tmp_path / "short.flac", 3.0, bursts=(1.0,), sr=44100, channels=2, fmt="FLAC")
    (segment,) = T.iter_segments(path, SR, 15.0, block_frames=1000)
    assert np.array_equal(segment.audio, load_audio(path, SR))


def test_words_are_timed_across_segments(tmp_path, transcriber) -> None:
    path = tone_file(tmp_path / "long.wav", 50.0)
    result = transcriber.transcribe(path)
    assert len(result.segments) >= 4 and result.duration == pytest.approx(50.0)
    assert [w.word for w in result.words] == ["A"] * len(BURSTS)
    for word, start in zip(result.words, BURSTS):
        assert word.start == pytest.approx(start, abs=0.05)
        assert word.end - word.start == pytest.approx(0.3, abs=0.06)


def test_eight_khz_stereo_is_resampled(tmp_path, transcriber) -> None:
    path = tone_file(tmp_path / "phone.wav", 4.0, bursts=(2.0,), sr=8000, channels=2)
    result = transcriber.transcribe(path)
    assert result.duration == pytest.approx(4.0) and result.words[0].start == pytest.approx(2.0, abs=0.05)


def test_static_input_bounds_the_segments(tmp_path, labels) -> None:
    predictor = T.SegmentPredictor(fake_predict(labels), frames=301)  # 3 s at a 10 ms hop
    transcriber = T.Transcriber(predictor, GreedyCTCDecoder(labels), SpectConfig(), 15.0)
    assert transcriber.segment_seconds == pytest.approx(3.0)
    result = transcriber.transcribe(tone_file(tmp_path / "a.wav", 10.0, bursts=(1.0, 5.0, 8.5)))
    assert all(s["end"] - s["start"] <= 3.0 + 1e-9 for s in result.segments)
    assert [round(w.start, 1) for w in result.words] == [1.0, 5.0, 8.5]
    with pytest.raises(ValueError, match="static input of 301"):
        predictor(np.zeros((161, 302), np.float32))


def test_srt_and_json_formats() -> None:
    words = [T.Word("HELLO", 0.5, 0.9), T.Word("WORLD", 1.0, 1.42), T.Word("AGAIN", 3661.5, 3662.0)]
    transcript = T.Transcript("a.wav", 3662.0, "HELLO WORLD AGAIN", words, [{"start": 0.0, "end": 3662.0, "text": ""}])
    assert T.format_time(3661.5) == "01:01:01,500"
    assert T.to_srt(transcript) == (
        "1\n00:00:00,500 --> 00:00:01,420\nHELLO WORLD\n\n2\n01:01:01,500 --> 01:01:02,000\nAGAIN\n"
    )
    doc = json.loads(T.to_json(transcript))
    assert doc["text"] == "HELLO WORLD AGAIN" and doc["words"][1] == {"word": "WORLD", "start": 1.0, "end": 1.42}
    assert T.render(transcript, "text") == "HELLO WORLD AGAIN"
    with pytest.raises(ValueError, match="format"):
        T.render(transcript, "vtt")


def test_srt_cues_split_on_pauses_and_length() -> None:
    words = [T.Word(str(i), i * 0.5, i * 0.5 + 0.4) for i in range(25)]
    cues = T.srt_cues(words, max_words=10, max_seconds=100.0)
    assert [len(c[2].split()) for c in cues] == [10, 10, 5]


def test_bad_files_are_reported_and_the_rest_transcribed(tmp_path, transcriber) -> None:
    good = tone_file(tmp_path / "good.wav", 2.0, bursts=(0.5,))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), SR)
    silent = tone_file(tmp_path / "silent.wav", 2.0, bursts=())
    messages, emitted = [], []
    files = [corrupt, good, empty, tmp_path / "missing.wav", silent]
    report = T.transcribe_files(transcriber, files, emitted.append, messages.append)
    assert [t.path for t in report.done] == [str(good), str(silent)] and len(emitted) == 2
    assert [p for p, _ in report.failed] == [str(corrupt), str(empty), str(tmp_path / "missing.wav")]
    assert all(str(p) in r for p, r in report.failed)
    assert "no audio samples" in report.failed[1][1]
    assert any("no speech recognised" in m and "silent.wav" in m for m in messages)


def test_expand_inputs_lists_audio_and_notes_the_rest(tmp_path) -> None:
    (tmp_path / "b.flac").write_bytes(b"")
    (tmp_path / "a.WAV").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden").write_text("x")
    files, notes = T.expand_inputs([tmp_path, tmp_path / "explicit.txt"])
    assert [f.name for f in files] == ["a.WAV", "b.flac", "explicit.txt"]
    assert len(notes) == 1 and "notes.txt" in notes[0]


def test_output_writer_files_and_name_clashes(tmp_path) -> None:
    writer = T.OutputWriter("srt", str(tmp_path / "out"), several=True)
    transcript = T.Transcript("x/a.wav", 1.0, "HI", [T.Word("HI", 0.0, 0.5)])
    writer(transcript)
    writer(T.Transcript("y/a.wav", 1.0, "HI", [T.Word("HI", 0.0, 0.5)]))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.srt", "a_1.srt"]


def test_transcribe_script_exit_status_and_streams(tmp_path, labels, monkeypatch, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    tone_file(folder / "phone.wav", 3.0, bursts=(1.0,), sr=8000, channels=2)
    tone_file(folder / "music.flac", 2.0, bursts=(0.5,), sr=44100, fmt="FLAC")
    (folder / "broken.wav").write_bytes(b"not audio at all")
    (folder / "readme.md").write_text("hello")
    monkeypatch.setattr(T, "load_segment_predictor", lambda *a, **k: T.SegmentPredictor(fake_predict(labels)))
    script = importlib.import_module("transcribe")
    code = script.main([str(folder), "--model_path", str(tmp_path / "model.onnx"), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["path"].rsplit("/", 1)[1] for d in docs] == ["music.flac", "phone.wav"]
    assert all(d["text"] == "A" and len(d["words"]) == 1 for d in docs)
    assert f"ERROR {folder / 'broken.wav'}" in err and "readme.md" in err and "2 of 3 files, 1 failed" in err
    code = script.main([str(folder / "music.flac"), "--model_path", "m.onnx"])
    assert code == 0 and capsys.readouterr().out == "A\n"
