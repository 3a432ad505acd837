#!/usr/bin/env bash
# Evaluate on CPU: bash scripts/run_eval_cpu.sh CKPT [eval.py options...]
#              or: bash scripts/run_eval_cpu.sh CKPT_DIR CKPT_NAME [eval.py options...]   (the lab's form)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage="Usage: bash $0 CKPT | CKPT_DIR CKPT_NAME [eval.py options...]"
if ! is_positional "$@" || [[ "$1" == "-h" ]]; then
  echo "$usage" >&2
  exit 2
fi
ckpt=$1
shift
if [[ -d "$ckpt" ]]; then
  if ! is_positional "$@"; then
    echo "$usage (a directory needs a CKPT_NAME)" >&2
    exit 2
  fi
  ckpt="$ckpt/$1"
  shift
fi
ckpt=$(abs_file "$ckpt")
run_logged "${LOG_FILE:-eval.log}" "$PYTHON" "$ROOT/eval.py" --device_target CPU --pretrain_ckpt "$ckpt" "$@"
