#!/usr/bin/env bash
# Train on one GPU: bash scripts/run_standalone_train_gpu.sh [DEVICE_ID] [PRETRAINED_CKPT] [train.py options...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "Usage: bash $0 [DEVICE_ID] [PRETRAINED_CKPT] [train.py options...]"
  exit 0
fi
device_id=0
if is_positional "$@"; then
  if [[ ! "$1" =~ ^[0-9]+$ ]]; then
    echo "Usage: bash $0 [DEVICE_ID] [PRETRAINED_CKPT] [train.py options...] (DEVICE_ID must be a number)" >&2
    exit 2
  fi
  device_id=$1
  shift
fi
args=(--device_target GPU --device_id "$device_id")
if is_positional "$@"; then
  args+=(--pre_trained_model_path "$(abs_file "$1")")
  shift
fi
run_logged "${LOG_FILE:-train.log}" "$PYTHON" "$ROOT/train.py" "${args[@]}" "$@"
