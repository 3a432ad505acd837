"""transcribe.py gives the same transcripts and word times from a checkpoint, its MindIR export and its ONNX export
(a tiny random network; a 7 s file exercises segmenting at the exported 3 s static input)."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
import soundfile as sf

ms = pytest.importorskip("mindspore")
pytestmark = pytest.mark.mindspore  # ~15 s on 2 cores


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, labels):
    """A checkpoint of a random hidden-16, 1-layer network with its run's config.json next to it."""
    from src import config as C
    from src.deepspeech2 import build_network

    folder = tmp_path_factory.mktemp("run")
    cfg = C.TrainConfig(ModelConfig=C.ModelConfig(hidden_size=16, hidden_layers=1))
    ms.set_seed(3)
    net = build_network(labels, cfg.DataConfig.SpectConfig, cfg.ModelConfig)
    fc = net.fc.module.weight  # larger output weights: a confident, varied (random) transcript
    fc.set_data(ms.Tensor(np.random.default_rng(0).normal(0, 2.0, fc.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(folder / "tiny.ckpt"))
    C.save_config(cfg, folder)
    return folder


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(1)
    t = np.arange(int(7.0 * 22050)) / 22050
    speechy = np.sin(2 * np.pi * 300 * t * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))) * (np.sin(2 * np.pi * 1.3 * t) > 0)
    sf.write(str(folder / "long.wav"), (0.3 * speechy + 0.01 * rng.standard_normal(len(t))).astype(np.float32), 22050)
    sf.write(str(folder / "short.flac"), (0.2 * rng.standard_normal((16000, 2))).astype(np.float32), 8000)
    return folder


def test_checkpoint_mindir_and_onnx_agree(run_dir, audio_dir, tmp_path) -> None:
    export = importlib.import_module("export")
    transcribe = importlib.import_module("transcribe")
    ckpt = str(run_dir / "tiny.ckpt")
    models = {"ckpt": ckpt}
    for fmt in ("MINDIR", "ONNX"):
        name = str(run_dir / f"tiny_{fmt.lower()}")
        assert (
            export.main(
                ["--pre_trained_model_path", ckpt, "--file_format", fmt, "--file_name", name, "--input_seconds", "3"]
            )
            == 0
        )
        models[fmt] = name + (".mindir" if fmt == "MINDIR" else ".onnx")
    results = {}
    for kind, path in models.items():
        out = tmp_path / kind
        argv = [str(audio_dir), "--model_path", path, "--format", "json", "--output_dir", str(out)]
        assert transcribe.main([*argv, "--segment_seconds", "3"]) == 0
        results[kind] = {p.name: json.loads(p.read_text()) for p in sorted(out.iterdir())}
    reference = results["ckpt"]
    assert set(reference) == {"long.json", "short.json"}
    assert len(reference["long.json"]["segments"]) >= 3  # 7 s at a 3 s static input
    assert reference["long.json"]["text"]  # a random network still spells something
    for kind in ("MINDIR", "ONNX"):
        for name, doc in reference.items():
            other = results[kind][name]
            assert other["text"] == doc["text"], f"{kind} {name}"
            assert other["words"] == doc["words"] and other["segments"] == doc["segments"]
