"""Shape arithmetic derived from the config, in one place (pure Python, no framework import).

161 frequency bins = 16000 * 0.02 / 2 + 1; the conv front end keeps time length ceil(T / 2)
(conv1 stride 2 with 5 frames of padding each side, conv2 stride 1) and turns 161 bins into 41, so the
RNN input is 32 * 41 = 1312.
"""

from __future__ import annotations

import math

# (kernel, stride, padding) of the two convolutions along frequency and along time, as in the model zoo.
CONV_CHANNELS = 32
CONV_FREQ = ((41, 2, 20), (21, 2, 10))
CONV_TIME = ((11, 2, 5), (11, 1, 5))
# The longest segment transcription feeds the model at once (seconds).
DEFAULT_SEGMENT_SECONDS = 15.0


def n_fft(sample_rate: int, window_size: float) -> int:
    """FFT size = window length in samples (320 at 16 kHz, 20 ms)."""
    return int(sample_rate * window_size)


def hop_length(sample_rate: int, window_stride: float) -> int:
    """Hop in samples (160 at 16 kHz, 10 ms)."""
    return int(sample_rate * window_stride)


def freq_bins(sample_rate: int, window_size: float) -> int:
    """Spectrogram height: n_fft // 2 + 1 (161)."""
    return n_fft(sample_rate, window_size) // 2 + 1


def num_frames(num_samples: int, hop: int) -> int:
    """Spectrogram width of a centred STFT: 1 + samples // hop."""
    return 1 + num_samples // hop


def frames_for_seconds(seconds: float, sample_rate: int, window_stride: float) -> int:
    """Spectrogram frames of `seconds` of audio: num_frames of round(seconds * sample_rate) samples."""
    return num_frames(int(round(seconds * sample_rate)), hop_length(sample_rate, window_stride))


def seconds_for_frames(frames: int, sample_rate: int, window_stride: float) -> float:
    """The longest audio whose spectrogram has at most `frames` frames (inverse of frames_for_seconds)."""
    return (frames - 1) * hop_length(sample_rate, window_stride) / sample_rate


def frames_to_seconds(frames: float, window_stride: float) -> float:
    """Audio time spanned by `frames` spectrogram frames (one hop each); for durations and throughput."""
    return frames * window_stride


def output_frame_seconds(window_stride: float) -> float:
    """Time covered by one network output frame: the hop times the convolutions' time strides (0.02 s)."""
    return window_stride * math.prod(stride for _, stride, _ in CONV_TIME)


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def conv_out_freq(bins: int) -> int:
    """Frequency size after both convolutions (161 -> 81 -> 41)."""
    for kernel, stride, pad in CONV_FREQ:
        bins = _conv_out(bins, kernel, stride, pad)
    return bins


def output_length(frames: int) -> int:
    """Time steps the network emits for `frames` input frames (integer conv formula, = ceil(frames / 2))."""
    for kernel, stride, pad in CONV_TIME:
        frames = _conv_out(frames, kernel, stride, pad)
    return frames


def rnn_input_size(sample_rate: int, window_size: float) -> int:
    """Features per time step entering the first LSTM: 32 channels x reduced frequency bins (1312)."""
    return CONV_CHANNELS * conv_out_freq(freq_bins(sample_rate, window_size))


def bucket_length(frames: int, per_octave: int = 4, minimum: int = 64) -> int:
    """The padded length of a batch whose longest clip has `frames` frames.

    Lengths are rounded up to a grid with `per_octave` steps per doubling (at most 25% padding for 4, less
    for long clips), so a whole LibriSpeech epoch compiles only a few dozen static graph shapes. Always even,
    >= minimum.
    """
    if frames <= minimum:
        return minimum
    step = max(2, 2 ** (math.floor(math.log2(frames)) - int(math.log2(per_octave))))
    return int(math.ceil(frames / step) * step)
