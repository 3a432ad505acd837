"""Transcribe audio files of any length: stream each file in blocks, cut it into model-sized segments at quiet
points, decode every segment, and write text, JSON (per-word times) or SRT.

Memory stays bounded: a file is read `block_frames` samples at a time and at most one segment (plus one block)
is held, so a two-hour recording costs what a 15-second one does. Segments are cut at the quietest 20 ms of the
last `search_seconds` before the length limit (no overlap, so no word is counted twice), resampled to the model's
rate as a whole, and their word times are offset by the segment's start. A file that fits in one segment gets
exactly the samples `src.audio.load_audio` returns, hence the features eval.py uses.

Models: a checkpoint (with the run's config.json), an exported MindIR or an exported ONNX file; exported graphs
have a static input (batch, 1, 161, frames), which bounds the segment length.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, Union

import numpy as np
import soundfile as sf

from src import shapes
from src.atomic import write_text
from src.audio import AudioError
from src.config import SpectConfig
from src.features import spectrogram
from src.segments import QUIET_WINDOW_S, Segment, Segmenter, quiet_cut  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

FORMATS = ("text", "json", "srt")
AUDIO_SUFFIXES = {f".{name.lower()}" for name in sf.available_formats()} | {".mp3", ".ogg", ".oga", ".opus", ".aif"}


class HypothesisDecoder(Protocol):
    """GreedyCTCDecoder or BeamCTCDecoder (src/beam_decoder.py): posteriors (T', C) -> Hypothesis."""

    def hypothesis(self, probs: np.ndarray): ...


@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Transcript:
    """One file's result; times in seconds from the start of the file."""

    path: str
    duration: float
    text: str
    words: list[Word] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)  # {"start", "end", "text"} per model segment


# ------------------------------------------------------------------------------------------------------ streaming
AudioSource = Union[str, Path, BinaryIO]


def open_audio(source: AudioSource, name: str | None = None) -> tuple[sf.SoundFile, str]:
    """Open a path or a binary file object with libsndfile; returns the file and the name errors use.

    Raises:
        FileNotFoundError: no such file.
        AudioError: not audio libsndfile can read.
    """
    if isinstance(source, (str, Path)):
        name = name or str(source)
        if not Path(source).is_file():
            raise FileNotFoundError(f"{name}: no such file")
        source = str(source)
    else:
        name = name or "<audio>"
    try:
        return sf.SoundFile(source), name
    except (RuntimeError, sf.LibsndfileError, TypeError) as err:
        reason = str(err).rsplit(": ", 1)[-1]  # libsndfile's reason, without the repr of a file object
        raise AudioError(f"{name}: not audio that libsndfile can read ({reason})") from None


def iter_segments(
    source: AudioSource,
    sample_rate: int,
    max_seconds: float,
    search_seconds: float = 3.0,
    block_frames: int = 1 << 16,
    name: str | None = None,
) -> Iterator[Segment]:
    """Stream a file (path or binary file object) as mono segments of at most `max_seconds` at `sample_rate`.

    Raises:
        FileNotFoundError: no such file.
        AudioError: unreadable, empty or non-finite audio (the message names the file, or `name`).
    """
    f, name = open_audio(source, name)
    with f:
        cutter = Segmenter(f.samplerate, sample_rate, max_seconds, search_seconds)
        for block in _blocks(f, name, block_frames):
            yield from cutter.push(block)
        if cutter.total == 0:
            raise AudioError(f"{name}: the file holds no audio samples")
        last = cutter.tail()
        if last is not None:
            yield last


def _blocks(f: sf.SoundFile, path: str, block_frames: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of at most `block_frames` samples; decoding errors name the file and position."""
    while True:
        try:
            block = f.read(block_frames, dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as err:
            raise AudioError(f"{path}: cannot decode audio after {f.tell() / f.samplerate:.1f} s ({err})") from None
        if len(block) == 0:
            return
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{path}: non-finite samples near {f.tell() / f.samplerate:.1f} s")
        yield mono


# ---------------------------------------------------------------------------------------------- model + decoding
PredictFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class SegmentPredictor:
    """Runs one segment's features through a predict function, padding to the model's static input if it has one.

    Args:
        predict: predict(features (N, 1, F, T), lengths (N,)) -> (probs (N, T', C), out_lengths (N,)).
        frames: the static T of an exported model (None: any length; padded to shapes.bucket_length so graph
            mode compiles few shapes).
        batch: the static N of an exported model.
    """

    def __init__(self, predict: PredictFn, frames: int | None = None, batch: int = 1) -> None:
        self.predict, self.frames, self.batch = predict, frames, batch

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """features (F, T) -> posteriors (T', C) of the valid output frames."""
        bins, t = features.shape
        width = self.frames if self.frames else shapes.bucket_length(t)
        if t > width:
            raise ValueError(f"segment of {t} frames exceeds the model's static input of {width} frames")
        batch = np.zeros((self.batch, 1, bins, width), np.float32)
        batch[0, 0, :, :t] = features
        # An exported model's static batch is filled with empty rows (length 0, masked out), never with copies.
        lengths = np.zeros(self.batch, np.int32)
        lengths[0] = t
        probs, out_lengths = self.predict(batch, lengths)
        return np.asarray(probs)[0, : int(np.asarray(out_lengths)[0])]

    def max_seconds(self, spect: SpectConfig) -> float | None:
        """The longest segment the static input holds (None when unbounded)."""
        if not self.frames:
            return None
        return shapes.seconds_for_frames(self.frames, spect.sample_rate, spect.window_stride)


def check_segment_seconds(seconds: float) -> None:
    """--segment_seconds must be a finite number of seconds above 1 (NaN and inf would make no segments)."""
    if not math.isfinite(seconds) or seconds <= 1.0:
        raise ValueError(f"--segment_seconds must be a finite number of seconds above 1, got {seconds}")


class Transcriber:
    """Segments, predicts and decodes whole files."""

    def __init__(
        self,
        predictor: SegmentPredictor,
        decoder: HypothesisDecoder,
        spect: SpectConfig,
        segment_seconds: float = shapes.DEFAULT_SEGMENT_SECONDS,
    ) -> None:
        check_segment_seconds(segment_seconds)
        limit = predictor.max_seconds(spect)
        if limit is not None and segment_seconds > limit:
            logger.info("segments shortened to %.2f s: the exported model's static input holds no more", limit)
            segment_seconds = limit
        if segment_seconds <= 1.0:
            raise ValueError(f"segment length must exceed 1 s, got {segment_seconds:.2f} s (the model's input limit)")
        self.predictor, self.decoder, self.spect, self.segment_seconds = predictor, decoder, spect, segment_seconds
        self.frame_s = shapes.output_frame_seconds(spect.window_stride)

    def segments(self, source: AudioSource, name: str | None = None) -> Iterator[Segment]:
        return iter_segments(source, self.spect.sample_rate, self.segment_seconds, name=name)

    def decode_segment(self, seg: Segment) -> tuple[list[Word], dict]:
        """Words (times from the start of the file) and the {"start", "end", "text"} record of one segment."""
        s = self.spect
        features = spectrogram(seg.audio, s.sample_rate, s.window_size, s.window_stride, s.window)
        hyp = self.decoder.hypothesis(self.predictor(features))
        words = [Word(w.word, seg.start + w.start * self.frame_s, seg.start + w.end * self.frame_s) for w in hyp.words]
        return words, {"start": seg.start, "end": seg.start + len(seg.audio) / s.sample_rate, "text": hyp.text}

    def warm_up(self) -> int:
        """Run every input width a segment can need once (graph mode compiles each on first use); returns the count.

        A server calls this before it listens, so no request pays for a compilation.
        """
        s = self.spect
        hop = shapes.hop_length(s.sample_rate, s.window_stride)
        longest = int(self.segment_seconds * s.sample_rate) // hop + 1  # frames of the longest segment
        widths = {}  # width -> frames of the longest segment padded to it
        for t in range(2, longest + 1):
            widths[self.predictor.frames or shapes.bucket_length(t)] = t
        noise = np.random.default_rng(0).standard_normal((longest - 1) * hop).astype(np.float32) * 1e-3
        for t in widths.values():
            self.decode_segment(Segment(0.0, noise[: (t - 1) * hop]))
        return len(widths)

    def transcribe(self, source: AudioSource, name: str | None = None) -> Transcript:
        """Text and word times of one file (a path or a binary file object; `name` names it in errors).

        Raises FileNotFoundError / AudioError naming the file.
        """
        decoded = [self.decode_segment(seg) for seg in self.segments(source, name)]
        return assemble(name or str(source), decoded)


def assemble(path: str, decoded: Sequence[tuple[list[Word], dict]]) -> Transcript:
    """One Transcript from the decoded segments of a file, in order."""
    words = [w for seg_words, _ in decoded for w in seg_words]
    parts = [part for _, part in decoded]
    text = " ".join(p["text"] for p in parts if p["text"])
    return Transcript(path, parts[-1]["end"] if parts else 0.0, text, words, parts)


# ----------------------------------------------------------------------------------------------------- formats
def format_time(seconds: float, sep: str = ",") -> str:
    """SRT time stamp HH:MM:SS,mmm."""
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt_cues(words: Sequence[Word], max_words: int = 10, max_seconds: float = 5.0, max_gap: float = 1.0) -> list:
    """Group words into (start, end, text) cues: a new cue after `max_words`, `max_seconds` or a pause."""
    cues, current = [], []
    for w in words:
        if current and (
            len(current) >= max_words or w.end - current[0].start > max_seconds or w.start - current[-1].end > max_gap
        ):
            cues.append(current)
            current = []
        current.append(w)
    if current:
        cues.append(current)
    return [(c[0].start, c[-1].end, " ".join(w.word for w in c)) for c in cues]


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{i}\n{format_time(a)} --> {format_time(b)}\n{text}\n"
        for i, (a, b, text) in enumerate(srt_cues(transcript.words), start=1)
    ]
    return "\n".join(blocks)


def to_document(transcript: Transcript) -> dict:
    """The JSON document of a transcript (times rounded to the millisecond), as transcribe.py writes it."""
    doc = asdict(transcript)
    for item in doc["words"] + doc["segments"]:
        item["start"], item["end"] = round(item["start"], 3), round(item["end"], 3)
    doc["duration"] = round(doc["duration"], 3)
    return doc


def to_json(transcript: Transcript) -> str:
    return json.dumps(to_document(transcript), ensure_ascii=False)


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript in one of FORMATS."""
    if fmt == "text":
        return transcript.text
    if fmt == "json":
        return to_json(transcript)
    if fmt == "srt":
        return to_srt(transcript)
    raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")


# ------------------------------------------------------------------------------------------------------- batches
def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Files to transcribe (named files as given, directories' audio files sorted) and notes on skipped files.

    A missing path stays in the list, so it is reported as a failure with the others.
    """
    files, notes = [], []
    for item in inputs:
        p = Path(item)
        if not p.is_dir():
            files.append(p)
            continue
        children = sorted(c for c in (p.rglob("*") if recursive else p.iterdir()) if c.is_file())
        for child in children:
            if child.suffix.lower() in AUDIO_SUFFIXES:
                files.append(child)
            elif not child.name.startswith("."):
                notes.append(f"skipped {child}: not an audio file name ({child.suffix or 'no suffix'})")
    return files, notes


@dataclass
class BatchReport:
    done: list[Transcript] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def transcribe_files(
    transcriber: Transcriber, files: Sequence[Path], emit: Callable[[Transcript], None], warn: Callable[[str], None]
) -> BatchReport:
    """Transcribe each file; a bad file is reported through `warn` and the rest still run."""
    report = BatchReport()
    for path in files:
        try:
            transcript = transcriber.transcribe(path)
        except (AudioError, OSError, ValueError) as err:
            reason = str(err) if str(path) in str(err) else f"{path}: {err}"
            report.failed.append((str(path), reason))
            warn(f"ERROR {reason}")
            continue
        if not transcript.words:
            warn(f"note: {path}: no speech recognised ({transcript.duration:.1f} s of audio)")
        report.done.append(transcript)
        emit(transcript)
    return report


class OutputWriter:
    """Writes transcripts to stdout (a header per file when there are several) or to files in a folder."""

    def __init__(self, fmt: str, output_dir: str | None, several: bool, out=None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")
        self.fmt, self.several, self.out = fmt, several, out
        self.dir = Path(output_dir) if output_dir else None
        self.used: set[str] = set()
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, transcript: Transcript) -> None:
        body = render(transcript, self.fmt)
        if self.dir is None:
            self._print(transcript.path, body)
            return
        suffix = {"text": ".txt", "json": ".json", "srt": ".srt"}[self.fmt]
        name, n = Path(transcript.path).stem, 1
        while name + suffix in self.used:
            name, n = f"{Path(transcript.path).stem}_{n}", n + 1
        self.used.add(name + suffix)
        write_text(self.dir / (name + suffix), body + "\n")

    def _print(self, path: str, body: str) -> None:
        out = self.out or sys.stdout
        if self.fmt == "text":
            print(f"{path}\t{body}" if self.several else body, file=out, flush=True)
        elif self.fmt == "json":
            print(body, file=out, flush=True)  # one JSON document per line
        else:
            print(f"==> {path} <==\n{body}" if self.several else body, file=out, flush=True)


# ------------------------------------------------------------------------------------------------- model loading
def exported_frames(path: str | Path) -> tuple[int, int] | None:
    """(batch, frames) of an exported model's static features input, read from the file; None if unknown."""
    path = Path(path)
    if path.suffix.lower() not in (".onnx", ".mindir"):
        return None
    try:
        values = _static_input_dims(path)
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends: name the file instead
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"{path}: not a readable {path.suffix.lower()} model (corrupt or truncated?): {first}"
        ) from None
    if len(values) != 4 or min(values) <= 0:
        return None
    return int(values[0]), int(values[3])


def _static_input_dims(path: Path) -> list[int]:
    if path.suffix.lower() == ".onnx":
        import onnx

        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        return [d.dim_value for d in dims]
    from mindspore.train import mind_ir_pb2

    model = mind_ir_pb2.ModelProto()
    model.ParseFromString(path.read_bytes())
    return list(model.graph.input[0].tensor[0].dims) if model.graph.input else []


def load_segment_predictor(
    model_path: str, labels: list[str], spect: SpectConfig, model, frames: int = 0, device_target: str = "CPU"
) -> SegmentPredictor:
    """A SegmentPredictor for a .ckpt (MindSpore cell), .mindir (GraphCell) or .onnx (onnxruntime) file.

    Args:
        model: ModelConfig of the network (checkpoints only).
        frames: static input frames of an exported model when the file does not say (0: read it from the file).
        device_target: MindSpore device for .ckpt and .mindir (graph mode is set here; ONNX runs on the CPU).
    Raises:
        FileNotFoundError, ValueError naming the file.
    """
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".ckpt", ".mindir"):
        from src.runtime import set_context

        set_context(device_target)
    if suffix == ".ckpt":
        from src.inference import cell_predict_fn, load_predictor

        _, cell = load_predictor(str(path), labels, spect, model)
        return SegmentPredictor(cell_predict_fn(cell))
    if suffix not in (".mindir", ".onnx"):
        raise ValueError(f"{path}: expected a .ckpt, .mindir or .onnx model file")
    from src.exporting import ExportedModel

    static = exported_frames(path)
    batch, found = static if static else (1, 0)
    if frames and found and frames != found:
        raise ValueError(f"{path}: --frames {frames} contradicts the file's static input of {found} frames")
    if not (frames or found):
        raise ValueError(f"{path}: cannot read the static input length from the file; pass --frames")
    return SegmentPredictor(ExportedModel(path), frames or found, batch)


def add_transcriber_args(parser: argparse.ArgumentParser) -> None:
    """The model and decoder options transcribe.py and serve.py share (argparse)."""
    from src.cli import add_decoder_args

    parser.add_argument("--model_path", required=True, help=".ckpt, .mindir or .onnx")
    parser.add_argument(
        "--segment_seconds", type=float, default=None, help="longest piece the model sees at once (default 15)"
    )
    parser.add_argument("--frames", type=int, default=None, help="static input frames of an exported model (if unread)")
    parser.add_argument("--device_target", default=None, choices=["CPU", "GPU", "Ascend"], help="default CPU")
    parser.add_argument("--labels_path", default=None, help="default labels.json")
    parser.add_argument("--config", default=None, help="JSON file of config values (same layout as config.json)")
    parser.add_argument("--set", action="append", default=[], metavar="Section.key=value")
    add_decoder_args(parser)


def build_transcriber(args: argparse.Namespace) -> Transcriber:
    """Config (the run's config.json next to a checkpoint, flags, --set), decoder and model -> Transcriber.

    Args:
        args: an argparse namespace with the options of `add_transcriber_args`.
    Raises:
        FileNotFoundError, ValueError, KeyError, ImportError with a one-line message.
    """
    from src.beam_decoder import build_decoder
    from src.cli import TRANSCRIBE_FLAGS, build_inference_config, log_config
    from src.text import load_labels

    cfg = build_inference_config(args, args.model_path, TRANSCRIBE_FLAGS)  # validated before the model is loaded
    log_config(cfg)
    spect, t = cfg.DataConfig.SpectConfig, cfg.TranscribeConfig
    labels = load_labels(cfg.DataConfig.labels_path)
    decoder = build_decoder(labels, cfg.LMConfig)
    model = load_segment_predictor(args.model_path, labels, spect, cfg.ModelConfig, t.frames, cfg.device_target)
    return Transcriber(model, decoder, spect, t.segment_seconds)
