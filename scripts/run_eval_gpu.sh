#!/usr/bin/env bash
# Evaluate on one GPU: bash scripts/run_eval_gpu.sh DEVICE_ID CKPT [eval.py options...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ $# -lt 2 || ! "$1" =~ ^[0-9]+$ ]] || ! is_positional "${@:2}"; then
  echo "Usage: bash $0 DEVICE_ID CKPT [eval.py options...]" >&2
  exit 2
fi
device_id=$1
ckpt=$(abs_file "$2")
shift 2
run_logged "${LOG_FILE:-eval.log}" "$PYTHON" "$ROOT/eval.py" --device_target GPU --device_id "$device_id" \
  --pretrain_ckpt "$ckpt" "$@"
