"""The lab manual, played step by step as a student would, with a tiny model:

tarballs in LibriSpeech_dataset/{train,val,test_clean,test_other}/ -> `python tools/librispeech.py` (no options) ->
the lab's own line-by-line json_to_csv logic -> data/libri_*_manifest.csv (the config's defaults, nothing edited) ->
`nohup bash scripts/run_standalone_train_cpu.sh ... > train.log 2>&1 &` -> wait for checkpoints -> kill -9 ->
`bash scripts/run_eval_cpu.sh ./checkpoint/ NAME` on the newest checkpoint -> `python export.py`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.mindspore]
MANUAL_FOLDERS = {"train-clean-100": "train", "dev-clean": "val", "dev-other": "val", "test-clean": "test_clean",
                  "test-other": "test_other"}  # fmt: skip
# A tiny network and short epochs (12 clips, batch 2: 6 steps), so an epoch ends within seconds.
TINY = ["--batch_size", "2", "--epochs", "50", "--set", "ModelConfig.hidden_size=32", "--set",
        "ModelConfig.hidden_layers=1", "--set", "DataConfig.num_workers=1"]  # fmt: skip


def run(cmd: list[str], cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def checkpoints(folder: Path) -> list[Path]:
    """Named checkpoints, oldest first (hidden temporary files of an interrupted write are not checkpoints)."""
    return sorted((p for p in folder.glob("DeepSpeech-*_*.ckpt")), key=lambda p: p.stat().st_mtime)


def running_in_group(group: int) -> list[int]:
    """Pids of the process group that still run (killed processes may stay zombies until someone reaps them)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is needed to synthesise the corpus")
def test_the_lab_manual_step_by_step(tmp_path, lab_converter):
    pytest.importorskip("mindspore")
    env = dict(os.environ, PYTHON=sys.executable, GLOG_v="3")
    work = tmp_path / "DeepSpeech2"
    work.mkdir()
    # 0. the tarballs, placed as the manual has them
    run([sys.executable, str(REPO / "tools/make_sample_corpus.py"), "--out-dir", str(tmp_path / "tars"), "--splits",
         ",".join(MANUAL_FOLDERS), "--train-utterances", "12", "--eval-utterances", "2"], work, env)  # fmt: skip
    for split, folder in MANUAL_FOLDERS.items():
        (work / "LibriSpeech_dataset" / folder).mkdir(parents=True, exist_ok=True)
        shutil.move(tmp_path / "tars" / f"{split}.tar.gz", work / "LibriSpeech_dataset" / folder)
    # 1. python librispeech.py
    run([sys.executable, str(REPO / "tools/librispeech.py")], work, env)
    # 2. the lab's json_to_csv.py, line by line, into the paths the lab's config names
    (work / "data").mkdir()
    for name in ("train", "val", "test_clean"):
        manifest = f"libri_{name}_manifest"
        lab_converter(work / "LibriSpeech_dataset" / f"{manifest}.json", work / "data" / f"{manifest}.csv")
    assert len((work / "data/libri_train_manifest.csv").read_text().splitlines()) == 12
    # 3. nohup bash scripts/run_standalone_train_cpu.sh > train.log 2>&1 &   (then, later, kill -9)
    launcher = f"{REPO / 'scripts/run_standalone_train_cpu.sh'} {' '.join(TINY)}"
    proc = subprocess.Popen(["bash", "-c", f"nohup bash {launcher} > train.log 2>&1 &"], cwd=work, env=env,
                            start_new_session=True)  # fmt: skip
    proc.wait()
    group = proc.pid  # the background launcher, tee-less, and python share this process group
    log = work / "train.log"
    try:
        wait_for(lambda: log.is_file() and "per step time" in log.read_text(), proc, "an epoch to finish")
        wait_for(lambda: len(checkpoints(work / "checkpoint")) >= 3, proc, "three checkpoints")
    finally:
        os.killpg(group, signal.SIGKILL)  # the lab's `pkill -9 python`, at whatever point training is
    wait_for(lambda: not running_in_group(group), proc, "the killed run to be gone", timeout=10)
    text = log.read_text()
    assert re.search(r"^epoch: 1 step: 1, loss is \d+\.\d+", text, re.M), text[-2000:]
    assert re.search(r"^epoch time: \d+\.\d{3} ms, per step time: \d+\.\d{3} ms$", text, re.M)
    assert text.count("epoch: 1 step: 1, loss is") == 1  # written once, not once by nohup and once by tee
    newest = checkpoints(work / "checkpoint")[-1]
    assert time.time() - newest.stat().st_mtime < 120  # at most a few steps old when killed
    # 4. bash scripts/run_eval_cpu.sh ./checkpoint/ DeepSpeech-E_S.ckpt   (test set: data/libri_test_clean_manifest.csv)
    ev = run(["bash", str(REPO / "scripts/run_eval_cpu.sh"), "./checkpoint/", newest.name], work, env)
    assert re.search(r"^Test Summary \tAverage WER \d+\.\d{3}\tAverage CER \d+\.\d{3}\t$", ev.stdout, re.M)
    assert ev.stdout.count("Ref: ") == 2 and "Test Summary" in (work / "eval.log").read_text()
    # 5. python export.py --pre_trained_model_path ./checkpoint/DeepSpeech-E_S.ckpt
    ex = run([sys.executable, str(REPO / "export.py"), "--pre_trained_model_path", f"./checkpoint/{newest.name}"],
             work, env)  # fmt: skip
    assert "161, 3501)" in ex.stdout and (work / "deepspeech2.mindir").stat().st_size > 10_000
