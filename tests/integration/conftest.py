"""Integration tests run MindSpore in graph mode on the CPU."""

from __future__ import annotations

import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def graph_mode_cpu():
    ms = pytest.importorskip("mindspore")
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    return ms


@pytest.fixture()
def tiny_train_config(tmp_path):
    """make(manifest, *overrides) -> a validated-path TrainConfig: hidden 16 x 1, batch 4, 1 epoch, run in tmp."""
    from src import config as C

    def make(manifest, *overrides: str):
        cfg = C.TrainConfig()
        base = [
            f"DataConfig.train_manifest={manifest}",
            "DataConfig.val_manifest=",  # never the lab's default data/libri_val_manifest.csv of the checkout
            "DataConfig.batch_size=4",
            "TrainingConfig.epochs=1",
            "ModelConfig.hidden_size=16",
            "ModelConfig.hidden_layers=1",
            f"CheckpointConfig.ckpt_path={tmp_path / 'run'}",
        ]
        C.apply_overrides(cfg, base + list(overrides))
        cfg.DataConfig.labels_path = str(C.REPO_ROOT / "labels.json")
        return cfg

    return make


# ------------------------------------------------------------------------------------------- the served model
SPEECH = ("the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore")


def speechy_audio(seconds: float, sr: int = 16000) -> np.ndarray:
    """Stand-in for speech when espeak-ng is missing: a warbling tone switched on and off, with a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    tone = np.sin(2 * np.pi * 300 * t * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))) * (np.sin(2 * np.pi * 1.3 * t) > 0)
    return (0.3 * tone + 0.01 * np.random.default_rng(1).standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="session")
def speech_clips(tmp_path_factory) -> dict[str, Path]:
    """About 7 s of speech (espeak-ng; a synthetic stand-in without it) as 16 kHz PCM_16 wav and 22.05 kHz flac."""
    import soundfile as sf

    from src.audio import resample
    from tools.make_sample_corpus import synthesize

    folder = tmp_path_factory.mktemp("clips")
    if shutil.which("espeak-ng"):
        pause = np.zeros(8000, np.float32)
        audio = np.concatenate(
            [pause, synthesize(SPEECH[0], "en", 150, 50), pause, synthesize(SPEECH[1], "en", 150, 50)]
        )
    else:
        audio = speechy_audio(7.0)
    clips = {"wav": folder / "speech.wav", "flac": folder / "speech.flac"}
    sf.write(str(clips["wav"]), audio, 16000, subtype="PCM_16")
    sf.write(str(clips["flac"]), resample(audio, 16000, 22050), 22050)
    return clips


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, labels) -> Path:
    """A random hidden-32, 1-layer checkpoint (with its config.json) whose transcripts have several words.

    Large output weights make it spell confidently; a larger space row makes it split words.
    """
    import mindspore as ms

    from src import config as C
    from src.deepspeech2 import build_network

    folder = tmp_path_factory.mktemp("tiny_run")
    cfg = C.TrainConfig(ModelConfig=C.ModelConfig(hidden_size=32, hidden_layers=1))
    ms.set_seed(3)
    net = build_network(labels, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    weight = np.random.default_rng(0).normal(0, 2.0, net.fc.module.weight.shape).astype(np.float32)
    weight[labels.index(" ")] *= 2.5
    net.fc.module.weight.set_data(ms.Tensor(weight))
    ms.save_checkpoint(net, str(folder / "tiny.ckpt"))
    C.save_config(cfg, folder)
    return folder / "tiny.ckpt"


SERVE_OPTIONS = ["--segment_seconds", "3", "--max_upload_mb", "0.5", "--max_seconds", "10", "--partial_every", "0.5"]


@pytest.fixture(scope="session")
def serve_url(tiny_model, tmp_path_factory):
    """Base URL of serve.py running the tiny model on a free loopback port (SERVE_OPTIONS); stopped at the end."""
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    cmd = [sys.executable, str(REPO / "serve.py"), "--model_path", str(tiny_model), "--port", "0", *SERVE_OPTIONS]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    line, deadline = "", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 1.0)[0]:
            line = proc.stdout.readline()
            break
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.kill()
        pytest.fail(f"serve.py did not start (exit {proc.poll()}): {line!r}\n{log.read_text()[-2000:]}")
    yield f"http://127.0.0.1:{match.group(1)}"
    proc.terminate()
    assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
