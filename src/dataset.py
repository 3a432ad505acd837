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
from src.config import EvalDataConfig, SpectConfig, TrainDataConfig
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
    size: int  # clips (= rows: batches are never padded with copies)
    part: tuple[int, int] = (0, 1)  # (k, n): segment k of n of one clip longer than segment_seconds (eval only)

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


def batch_length(batch: list[int], frames: list[int]) -> int:
    """Padded length (frames) of a batch of clip indices: the bucket of its longest clip."""
    return shapes.bucket_length(max(frames[i] for i in batch))


def fill_batches(order: list[int], frames: list[int], max_frames: int, max_clips: int = 0) -> list[list[int]]:
    """Cut clips sorted by length into batches whose padded size (clips x padded length) stays <= max_frames.

    A clip longer than the cap on its own gets a batch of one. Since `order` is ascending, the clip being added
    sets the batch's padded length, so a bucket of padded length L gets floor(max_frames / L) clips (>= 1), and
    at most `max_clips` (0: no limit).
    """
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        full = max_clips and len(current) == max_clips
        if current and (full or shapes.bucket_length(frames[i]) * (len(current) + 1) > max_frames):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def shuffle_grouped(batches: list[list[int]], frames: list[int], rng: np.random.Generator) -> list[list[int]]:
    """Shuffle batches so that those of one padded length run consecutively.

    Every new padded length costs a graph compilation (and its memory), so an epoch meets each length once:
    the order of the length groups and the order within each group are both shuffled by `rng`.
    """
    groups: dict[int, list[list[int]]] = {}
    for batch in batches:
        groups.setdefault(batch_length(batch, frames), []).append(batch)
    keys = sorted(groups)
    out: list[list[int]] = []
    for k in rng.permutation(len(keys)):
        group = groups[keys[k]]
        rng.shuffle(group)
        out.extend(group)
    return out


def make_batches(
    frames: list[int],
    batch_size: int,
    seed: int,
    epoch: int,
    in_order: bool,
    drop_last: bool,
    max_frames: int = 0,
    group_by_length: bool = False,
    guard_frames: int = 0,
) -> list[list[int]]:
    """Group clips of similar length into batches; shuffle the batch order per epoch (deterministic).

    Args:
        frames: length of each clip.
        batch_size: clips per batch when `max_frames` is 0.
        in_order: keep batches in order of duration (SortaGrad's first epoch, and evaluation).
        drop_last: drop a last partial batch of `batch_size` (fixed-size batches only: capped batches vary in
            size by design, so none is dropped).
        max_frames: cap on padded frames per batch (clips x padded length) instead of a fixed clip count; 0: off.
        group_by_length: when shuffling, run the batches of one padded length consecutively (shuffle_grouped).
        guard_frames: with a fixed batch_size (max_frames 0), cut a batch short where its padded frames would
            pass this (evaluation: one long clip must not pad batch_size - 1 others to its length); 0: off.
    Returns:
        Lists of clip indices.
    """
    order = sorted(range(len(frames)), key=lambda i: (frames[i], i))
    if max_frames > 0:
        batches = fill_batches(order, frames, max_frames)
    elif guard_frames > 0:
        batches = fill_batches(order, frames, guard_frames, batch_size)
    else:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if drop_last and batches and len(batches[-1]) < batch_size:
            batches.pop()
    if not in_order:
        rng = np.random.default_rng((seed, epoch))
        if group_by_length:
            batches = shuffle_grouped(batches, frames, rng)
        else:
            rng.shuffle(batches)
    return batches


def collate(items: list[tuple[np.ndarray, tuple[int, ...]]]) -> tuple[np.ndarray, ...]:
    """Pad (spectrogram (F, T_i), label ids) pairs into the four network arrays, one row per item.

    Rows are never filled with copies of a clip: a short batch simply has fewer rows (one more graph shape at
    most), where copies would multiply the memory of its longest clip by the batch size.
    Returns:
        features (N, 1, F, T), lengths (N,), labels (N, S), label_lengths (N,); T = bucket length.
    """
    rows = len(items)
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
        batch_size: clips per batch (when batch_seconds is 0).
        training: shuffle batch order per epoch, drop the last partial batch, apply augmentation.
        augmenter: src.augment.Augmenter or None.
        seed: base of every random choice (batch order, augmentation), so runs and resumes are repeatable.
        sortagrad: first epoch in order of duration (training only).
        rank, world: this process's shard (batch i goes to rank i % world; all ranks get the same count).
        num_workers: feature-extraction threads.
        batch_seconds: cap on padded audio per batch (clips x padded length, in seconds) instead of batch_size
            clips, so every step needs about the same memory; 0: off. Lengths come from the file headers, so
            speed perturbation may stretch a batch past the cap by its factor.
        group_by_length: shuffled epochs run the batches of one padded length consecutively (fewer shape
            changes, hence fewer graph compilations); the group order and the order within groups are shuffled.
        segment_seconds: evaluation only: clips longer than this are cut at quiet points into segments of at
            most this length, each run as its own one-row batch (Batch.part), never batched with others; 0: off.
        max_batch_seconds: evaluation only, with a fixed batch_size: a batch is cut short where its padded audio
            (clips x padded length) would pass this, so one long clip never pads batch_size - 1 others to its
            length; the outputs do not change (padding is masked). 0: off.
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
        batch_seconds=0.0,
        group_by_length=False,
        segment_seconds=0.0,
        max_batch_seconds=0.0,
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
        self.max_frames = int(round(batch_seconds / spect.window_stride)) if batch_seconds > 0 else 0
        self.group_by_length = group_by_length
        if training and segment_seconds > 0:
            raise ValueError("segment_seconds applies to evaluation only (training never cuts clips)")
        self.segment_seconds = segment_seconds
        if training and max_batch_seconds > 0:
            raise ValueError("max_batch_seconds applies to evaluation only (training uses batch_seconds)")
        self.guard_frames = int(round(max_batch_seconds / spect.window_stride)) if max_batch_seconds > 0 else 0
        self.segment_frames = int(segment_seconds / spect.window_stride) + 1 if segment_seconds > 0 else 0
        self.failed: Counter = Counter()  # clips that could not be read at load time, by path
        if self.batches_per_epoch(0) == 0:
            size = f"{batch_seconds:g} s of audio" if self.max_frames else str(batch_size)
            raise ValueError(
                f"{len(utterances)} clips make no full batch of {size} per rank (world size {world}); "
                "lower batch_size (or batch_seconds)"
            )

    def is_long(self, index: int) -> bool:
        """Whether a clip is cut into segments (evaluation with segment_seconds only)."""
        return bool(self.segment_frames) and self.utts[index].frames > self.segment_frames

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches (clip indices) for an epoch; clips to be cut come last, one per batch."""
        in_order = (not self.training) or (self.sortagrad and epoch == 0)
        regular = [i for i in range(len(self.utts)) if not self.is_long(i)]
        frames = [self.utts[i].frames for i in regular]
        batches = make_batches(
            frames,
            self.batch_size,
            self.seed,
            epoch,
            in_order,
            drop_last=self.training,
            max_frames=self.max_frames,
            group_by_length=self.group_by_length,
            guard_frames=self.guard_frames,
        )
        batches = [[regular[j] for j in b] for b in batches]
        long = sorted((i for i in range(len(self.utts)) if self.is_long(i)), key=lambda i: (self.utts[i].frames, i))
        batches += [[i] for i in long]
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
        arrays = collate(items)
        texts = [self.utts[i].text for i, _ in kept]
        sources = [self.utts[i].sample.where for i, _ in kept]
        return Batch(*arrays, texts=texts, sources=sources, size=len(kept))

    def segment_batches(self, index: int) -> list[Batch]:
        """One-row batches of the segments of a clip longer than segment_seconds (eval; [] if unreadable).

        The cuts are transcribe.py's (src.segments.Segmenter: at the quietest 20 ms before the limit, no
        overlap), so the joined hypotheses cover every word once. Segments carry no labels: the transcript
        belongs to the whole clip.
        """
        from src.segments import Segmenter

        utt, s = self.utts[index], self.spect
        try:
            audio = load_audio(utt.sample.wav_path, s.sample_rate)
        except (AudioError, FileNotFoundError) as err:
            self.failed[str(utt.sample.wav_path)] += 1
            logger.warning("%s: skipped: %s", utt.sample.where, err)
            return []
        cutter = Segmenter(s.sample_rate, s.sample_rate, self.segment_seconds)
        pieces = cutter.push(audio) + [cutter.tail()]
        pieces = [p for p in pieces if p is not None]
        batches = []
        for k, piece in enumerate(pieces):
            spect = spectrogram(piece.audio, s.sample_rate, s.window_size, s.window_stride, s.window)
            arrays = collate([(spect, ())])
            batches.append(Batch(*arrays, [utt.text], [utt.sample.where], size=1, part=(k, len(pieces))))
        return batches

    def load_batches(self, indices: list[int], epoch: int, pool: ThreadPoolExecutor) -> list[Batch]:
        """The batches of one scheduled entry: one batch, or a long clip's segments (empty if unreadable)."""
        if len(indices) == 1 and self.is_long(indices[0]):
            return self.segment_batches(indices[0])
        batch = self.make_batch(indices, epoch, pool)
        return [] if batch is None else [batch]

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
                        for batch in self.load_batches(batches[pos], epoch, pool):
                            out.put((pos, batch))
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
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    out.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.1)


def create_dataset(
    manifest, labels, spect, *, batch_size, training, max_duration=0.0, skip_invalid=False, **kwargs
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


def training_dataset(d: TrainDataConfig, labels, seed: int, rank: int = 0, world: int = 1, augmenter=None):
    """The training set DataConfig describes: this rank's shard, SortaGrad, clips over max_duration skipped."""
    return create_dataset(
        d.train_manifest,
        labels,
        d.SpectConfig,
        batch_size=d.batch_size,
        training=True,
        max_duration=d.max_duration,
        skip_invalid=d.skip_invalid,
        augmenter=augmenter,
        sortagrad=d.sortagrad,
        group_by_length=d.group_by_length,
        seed=seed,
        rank=rank,
        world=world,
        num_workers=d.num_workers,
        batch_seconds=d.batch_seconds,
    )


def create_eval_dataset(data: EvalDataConfig, labels: list[str], **overrides) -> SpeechDataset:
    """The evaluation dataset an EvalDataConfig describes (eval.py, tools/tune_lm.py); kwargs override it."""
    options = dict(
        num_workers=data.num_workers,
        batch_seconds=data.batch_seconds,
        segment_seconds=data.max_eval_seconds,
        max_batch_seconds=data.max_batch_seconds,
    )
    options = {**options, **overrides}
    return create_dataset(
        data.test_manifest,
        labels,
        data.SpectConfig,
        batch_size=data.batch_size,
        training=False,
        skip_invalid=data.skip_invalid,
        **options,
    )
