"""The README's main job, end to end: corpus -> manifests -> CSV -> train -> eval -> export -> run the export."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.mindspore]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to synthesise the corpus")
def test_sample_pipeline_end_to_end(tmp_path):
    pytest.importorskip("mindspore")
    env = dict(os.environ, SKIP_SETUP="1", SAMPLE_STEPS="10", PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", str(REPO / "scripts/run_sample_pipeline.sh"), str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    work = tmp_path / "work"
    train_log = (work / "train.log").read_text()
    lab_step = r"^epoch: 1 step: 10, loss is [\d.]+ "  # the lab's line, then ours in brackets
    assert re.search(lab_step + r"\(epoch 1/1 step 10/\d+ avg [\d.]+ time [\d.]+s lr 1\.000e-02 audio", train_log, re.M)
    assert re.search(r"^epoch time: [\d.]+ ms, per step time: [\d.]+ ms$", train_log, re.M)
    eval_log = (work / "eval.log").read_text()
    assert re.search(r"^Test Summary \tAverage WER \d+\.\d{3}\tAverage CER \d+\.\d{3}\t$", eval_log, re.M)
    assert eval_log.count("Ref: ") == 10 and eval_log.count("Hyp: ") == 10
    assert re.search(r"^reached: 10 steps: ctc loss per output frame [\d.]+ -> [\d.]+ \(smoothed\); validation after "
                     r"epoch 1: WER [\d.]+% CER [\d.]+%", run.stdout, re.M)  # fmt: skip
    for suffix in ("mindir", "onnx"):
        assert (work / f"export/deepspeech2.{suffix}").stat().st_size > 100_000
    assert "max |diff| vs checkpoint" in run.stdout
    # The exported ONNX model runs on its own (onnxruntime only) and gives probabilities.
    from src.exporting import ExportedModel

    model = ExportedModel(work / "export/deepspeech2.onnx")
    features = np.zeros((1, 1, 81, 3501), np.float32)  # 35 s static input, 8 kHz front end (81 bins)
    probs, lengths = model(features, np.array([300], np.int32))
    assert probs.shape == (1, 1751, 29) and int(lengths[0]) == 150
    np.testing.assert_allclose(probs[0, :150].sum(axis=1), 1.0, rtol=1e-4)
