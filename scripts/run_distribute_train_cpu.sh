#!/usr/bin/env bash
# Data-parallel training on CPU processes with msrun:
#   bash scripts/run_distribute_train_cpu.sh [WORKERS] [PRETRAINED_CKPT] [train.py options...]
# Several machines: set NODES (machines), NODE_RANK (this machine, 0..NODES-1), MASTER_ADDR and MASTER_PORT
# (the rank-0 machine) in the environment; WORKERS is then the number of processes on each machine.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "Usage: bash $0 [WORKERS] [PRETRAINED_CKPT] [train.py options...]"
  exit 0
fi
workers=2
if is_positional "$@"; then
  [[ "$1" =~ ^[1-9][0-9]*$ ]] || { echo "Usage: bash $0 [WORKERS] [PRETRAINED_CKPT] [train.py options...]" >&2; exit 2; }
  workers=$1
  shift
fi
args=(--is_distributed --device_target "${DEVICE_TARGET:-CPU}")
if is_positional "$@"; then
  args+=(--pre_trained_model_path "$(abs_file "$1")")
  shift
fi
nodes=${NODES:-1}
log_dir=${LOG_DIR:-$PWD/distribute_logs}
echo "msrun: $nodes node(s) x $workers worker(s); per-rank logs in $log_dir"
run_logged "${LOG_FILE:-train.log}" msrun --worker_num=$((nodes * workers)) --local_worker_num="$workers" \
  --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-8118}" \
  --log_dir="$log_dir" --join=True "$ROOT/train.py" "${args[@]}" "$@"
