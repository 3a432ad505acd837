"""The data contract and `create_dataset`: validated manifests -> bucketed, padded numpy batches.

Each batch is a tuple of four arrays (train and eval alike):
    features       (N, 1, 161, T) float32  normalised log spectrograms, zero past each clip's length;
                   T is the batch's bucket length (shapes.bucket_length of its longest clip)
    lengths        (N,) int32              valid frames per clip
    labels         (N, S) int32            label ids, padded with 0 (ignored past label_lengths);
                                           S = shapes.output_length(T)
    label_lengths  (N,) int32              valid labels per clip
Label ids index labels.json; the CTC blank '_' is the LAST label (index 28), and the apostrophe is id 0, a
real label (upstream's truthiness test dropped it). Eval batches also carry the clips' transcripts and
manifest positions (`Batch.texts`, `Batch.sources`).

Manifests are validated up front, before any training: missing files, unreadable headers, empty transcripts,
unknown characters (counted per character) and clips too short for their transcript (CTC needs at least
one output frame per label: the usual cause of an infinite loss) are reported with file and line.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from src import shapes
from src.audio import AudioError, audio_duration, load_audio
from src.config import SpectConfig
from src.features import spectrogram
from src.manifest import Sample, read_manifest
from src.text import clean_transcript, encode, unknown_chars

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """A validated manifest entry."""

    sample: Sample
    text: str
    label_ids: tuple[int, ...]
    frames: int  # spectrogram frames at the configured rate (from the header, before augmentation)


@dataclass
class Batch:
    """One padded batch; `arrays()` gives the four network inputs."""

    features: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    label_lengths: np.ndarray
    texts: list[str]
    sources: list[str]
    size: int  # real clips; rows past it repeat the first clip to keep the graph shape (eval only)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.features, self.lengths, self.labels, self.label_lengths


def _check_sample(sample: Sample, labels: list[str], spect: SpectConfig, unknown: Counter) -> Utterance | str:
    """An Utterance, or a one-line reason naming the sample's file and line."""
    if not sample.wav_path.is_file():
        return f"{sample.where}: audio file not found: {sample.wav_path}"
    try:
        raw = sample.read_text()
        seconds = audio_duration(sample.wav_path)
    except (FileNotFoundError, ValueError) as err:
        return str(err) if sample.where in str(err) else f"{sample.where}: {err}"
    text = clean_transcript(raw)
    if not text:
        return f"{sample.where}: empty transcript ({sample.txt_path or 'inline text'})"
    bad = unknown_chars(text, labels)
    if bad:
        unknown.update(bad)
        return f"{sample.where}: unknown characters {dict(bad)} in transcript {text[:60]!r}"
    frames = shapes.frames_for_seconds(seconds, spect.sample_rate, spect.window_stride)
    ids = tuple(encode(text, labels))
    if shapes.output_length(frames) < len(ids):
        return (
            f"{sample.where}: clip too short for its transcript: {seconds:.2f} s gives "
            f"{shapes.output_length(frames)} output frames for {len(ids)} labels (CTC cannot align it)"
        )
    return Utterance(sample, text, ids, frames)


def load_utterances(
    manifest: str,
    labels: list[str],
    spect: SpectConfig,
    max_duration: float = 0.0,
    skip_invalid: bool = False,
) -> list[Utterance]:
    """Read and validate a manifest.

    Args:
        max_duration: seconds; longer clips are skipped with a counted warning (0 keeps all). Never cropped:
            upstream cropped long clips but kept their whole transcript.
        skip_invalid: drop invalid rows with a warning and counts instead of raising.
    Raises:
        ValueError: invalid rows (unless skip_invalid), listing the first ones with file and line.
    """
    samples = read_manifest(manifest)
    unknown: Counter = Counter()
    problems, utts, too_long = [], [], 0
    max_frames = shapes.frames_for_seconds(max_duration, spect.sample_rate, spect.window_stride)
    for sample in samples:
        result = _check_sample(sample, labels, spect, unknown)
        if isinstance(result, str):
            problems.append(result)
        elif max_duration > 0 and result.frames > max_frames:
            too_long += 1
        else:
            utts.append(result)
    if too_long:
        logger.warning("%s: skipped %d clips longer than %.1f s (max_duration)", manifest, too_long, max_duration)
    if problems:
        summary = f"{manifest}: {len(problems)} of {len(samples)} rows are invalid"
        if unknown:
            summary += f"; unknown characters with counts: {dict(unknown.most_common())}"
        detail = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        if not skip_invalid:
            raise ValueError(f"{summary}:\n  {detail}")
        logger.warning("%s (skipped):\n  %s", summary, detail)
    if not utts:
        raise ValueError(f"{manifest}: no usable clips")
    return utts


def make_batches(
    frames: list[int], batch_size: int, seed: int, epoch: int, in_order: bool, drop_last: bool
) -> list[list[int]]:
    """Group clips of similar length into batches; shuffle the batch order per epoch (deterministic).

    Args:
        frames: length of each clip.
        in_order: keep batches in order of duration (SortaGrad's first epoch, and evaluation).
    Returns:
        Lists of clip indices.
    """
    order = sorted(range(len(frames)), key=lambda i: (frames[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if not in_order:
        np.random.default_rng((seed, epoch)).shuffle(batches)
    return batches


def collate(items: list[tuple[np.ndarray, tuple[int, ...]]], pad_to: int = 0) -> tuple[np.ndarray, ...]:
    """Pad (spectrogram (F, T_i), label ids) pairs into the four network arrays.

    Args:
        pad_to: rows in the batch; extra rows repeat the first item (shape stays static for graph mode).
    Returns:
        features (N, 1, F, T), lengths (N,), labels (N, S), label_lengths (N,); T = bucket length.
    """
    rows = max(pad_to, len(items))
    items = items + [items[0]] * (rows - len(items))
    bins = items[0][0].shape[0]
    t_pad = shapes.bucket_length(max(s.shape[1] for s, _ in items))
    s_pad = shapes.output_length(t_pad)
    features = np.zeros((rows, 1, bins, t_pad), np.float32)
    labels = np.full((rows, s_pad), 0, np.int32)
    lengths = np.zeros(rows, np.int32)
    label_lengths = np.zeros(rows, np.int32)
    for i, (spect, ids) in enumerate(items):
        features[i, 0, :, : spect.shape[1]] = spect
        lengths[i] = spect.shape[1]
        labels[i, : len(ids)] = ids
        label_lengths[i] = len(ids)
    return features, lengths, labels, label_lengths


class SpeechDataset:
    """Validated utterances plus everything needed to turn them into batches.

    Args:
        utterances: from load_utterances.
        spect: the front end.
        batch_size: clips per batch.
        training: shuffle batch order per epoch, drop the last partial batch, apply augmentation.
        augmenter: src.augment.Augmenter or None.
        seed: base of every random choice (batch order, augmentation), so runs and resumes are repeatable.
        sortagrad: first epoch in order of duration (training only).
        rank, world: this process's shard (batch i goes to rank i % world; all ranks get the same count).
        num_workers: feature-extraction threads.
    """

    def __init__(
        self,
        utterances,
        spect,
        batch_size,
        training,
        augmenter=None,
        seed=1,
        sortagrad=True,
        rank=0,
        world=1,
        num_workers=2,
    ):
        self.utts = utterances
        self.spect = spect
        self.batch_size = batch_size
        self.training = training
        self.augmenter = augmenter if (augmenter is not None and augmenter.enabled) else None
        self.seed = seed
        self.sortagrad = sortagrad
        self.rank, self.world = rank, world
        self.num_workers = num_workers
        self.failed: Counter = Counter()  # clips that could not be read at load time, by path
        if self.batches_per_epoch(0) == 0:
            raise ValueError(
                f"{len(utterances)} clips make no full batch of {batch_size} per rank (world size {world}); "
                "lower batch_size"
            )

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (clip indices) for an epoch."""
        in_order = (not self.training) or (self.sortagrad and epoch == 0)
        frames = [u.frames for u in self.utts]
        batches = make_batches(frames, self.batch_size, self.seed, epoch, in_order, drop_last=self.training)
        per_rank = len(batches) // self.world if self.training else -(-len(batches) // self.world)
        return batches[self.rank :: self.world][:per_rank]

    def batches_per_epoch(self, epoch: int = 0) -> int:
        return len(self.epoch_batches(epoch))

    def features(self, index: int, epoch: int) -> np.ndarray | None:
        """Spectrogram (F, T) of one clip, augmented when training; None if its audio cannot be read."""
        utt = self.utts[index]
        try:
            audio = load_audio(utt.sample.wav_path, self.spect.sample_rate)
        except (AudioError, FileNotFoundError) as err:
            self.failed[str(utt.sample.wav_path)] += 1
            logger.warning("%s: skipped: %s", utt.sample.where, err)
            return None
        rng = np.random.default_rng((self.seed, epoch, index)) if self.augmenter else None
        if rng is not None:
            augmented = self.augmenter.audio(audio, rng)
            # Speed-up may leave too few frames for the transcript; keep the clip un-stretched then.
            hop = shapes.hop_length(self.spect.sample_rate, self.spect.window_stride)
            if shapes.output_length(shapes.num_frames(len(augmented), hop)) >= len(utt.label_ids):
                audio = augmented
        s = self.spect
        spect = spectrogram(audio, s.sample_rate, s.window_size, s.window_stride, s.window)
        if rng is not None:
            spect = self.augmenter.spectrogram(spect, rng, spect.shape[1])
        return spect

    def make_batch(self, indices: list[int], epoch: int, pool: ThreadPoolExecutor) -> Batch | None:
        """Load, featurise and pad one batch; unreadable clips are dropped (None if none is left)."""
        spects = list(pool.map(lambda i: self.features(i, epoch), indices))
        kept = [(i, s) for i, s in zip(indices, spects) if s is not None]
        if not kept:
            return None
        items = [(s, self.utts[i].label_ids) for i, s in kept]
        pad_to = self.batch_size if not self.training else 0
        arrays = collate(items, pad_to)
        texts = [self.utts[i].text for i, _ in kept]
        sources = [self.utts[i].sample.where for i, _ in kept]
        return Batch(*arrays, texts=texts, sources=sources, size=len(kept))

    def iterate(self, epoch: int, start: int = 0, prefetch: int = 2) -> Iterator[tuple[int, Batch]]:
        """Yield (batch position, Batch) for an epoch from position `start`, prepared in a background thread."""
        batches = self.epoch_batches(epoch)
        out: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def produce() -> None:
            try:
                with ThreadPoolExecutor(self.num_workers) as pool:
                    for pos in range(start, len(batches)):
                        if stop.is_set():
                            return
                        out.put((pos, self.make_batch(batches[pos], epoch, pool)))
                out.put(None)
            except BaseException as err:  # surface loader errors in the consumer, never hang it
                out.put(err)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if item[1] is not None:
                    yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    out.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.1)


def create_dataset(
    manifest, labels, spect, batch_size, training, max_duration=0.0, skip_invalid=False, **kwargs
) -> SpeechDataset:
    """Validate a manifest and wrap it as a SpeechDataset (kwargs as SpeechDataset's)."""
    utts = load_utterances(manifest, labels, spect, max_duration, skip_invalid)
    logger.info(
        "%s: %d clips, %.2f hours",
        manifest,
        len(utts),
        shapes.frames_to_seconds(sum(u.frames for u in utts), spect.window_stride) / 3600,
    )
    return SpeechDataset(utts, spect, batch_size, training, **kwargs)
