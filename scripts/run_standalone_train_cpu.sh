#!/usr/bin/env bash
# Train on CPU: bash scripts/run_standalone_train_cpu.sh [PRETRAINED_CKPT] [train.py options...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "Usage: bash $0 [PRETRAINED_CKPT] [train.py options...]"
  exit 0
fi
args=(--device_target CPU)
if is_positional "$@"; then
  args+=(--pre_trained_model_path "$(abs_file "$1")")
  shift
fi
run_logged "${LOG_FILE:-train.log}" "$PYTHON" "$ROOT/train.py" "${args[@]}" "$@"
