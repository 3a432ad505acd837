#!/usr/bin/env bash
# One-time set-up on a fresh machine (idempotent): system tools for the sample corpus, Python packages.
# bash scripts/setup.sh
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# mindspore==2.10.0 (requirements.txt) has wheels for Python 3.10-3.12 only: check first, in one line.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: no Python found (tried ${PYTHON}); install Python $SUPPORTED_PYTHON, e.g. apt-get install python3.11 python3.11-venv" >&2
  exit 1
fi
if ! supported_python "$PYTHON"; then
  found=$("$PYTHON" -c "import platform; print(platform.python_version())" 2>/dev/null || true)
  found=${found:-an unknown version}
  echo "error: $PYTHON is Python $found, but mindspore==2.10.0 has wheels for Python $SUPPORTED_PYTHON only; install one (e.g. apt-get install python3.11 python3.11-venv, or conda create -n ds2 python=3.11) and rerun with PYTHON=python3.11 bash scripts/setup.sh" >&2
  exit 1
fi
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
# ShellCheck: scripts/test.sh lints the launchers with it.
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
# The browser tests of the server's page (tests/integration/test_serve_browser.py): headless Chromium + its driver.
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
# A C++ compiler: the project's LSTM kernel (src/kernels/lstm_cpu.cc) is built on first use (src/lstm_kernel.py).
command -v g++ >/dev/null 2>&1 || missing+=(g++)
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "installing system packages: ${missing[*]}"
  # TMPDIR: apt's key checks need a writable temporary folder that is not mounted noexec
  $sudo env TMPDIR=/var/tmp apt-get update -qq
  $sudo env TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Test/dev tools; librosa checks our STFT against the library the official checkpoints' features came from.
# kenlm-ex: a KenLM wheel (the `kenlm` module) so KenLM binaries load and the KenLM tests run.
# requests + selenium: the server's API and browser tests. torch (CPU build): the PyTorch reference of
# bench/train_speed.py and bench/eval_speed.py, pinned to the project's network by tests/integration.
"$PYTHON" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt" "pytest>=7" "ruff>=0.5" \
  "librosa>=0.10" "kenlm-ex>=0.2.1" "requests>=2.28" "selenium>=4.15" "torch==2.13.0+cpu"
"$PYTHON" -c "import mindspore, numpy; print('mindspore', mindspore.__version__, 'numpy', numpy.__version__)"
# Build the LSTM kernel now (cached under ~/.cache/deepspeech2-mindspore; a failure only warns: training then
# runs MindSpore's own LSTM kernels, with more memory).
(cd "$ROOT" && "$PYTHON" -c "from src import lstm_kernel; print('LSTM kernel:', lstm_kernel.library() or 'unavailable')")
