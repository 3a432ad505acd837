#!/usr/bin/env bash
# Data-parallel training on GPUs with msrun (NCCL):
#   bash scripts/run_distribute_train_gpu.sh [DEVICES] [PRETRAINED_CKPT] [train.py options...]
# DEVICES: GPUs on this machine (default 8). Several machines: NODES, NODE_RANK, MASTER_ADDR, MASTER_PORT as for
# run_distribute_train_cpu.sh.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  echo "Usage: bash $0 [DEVICES] [PRETRAINED_CKPT] [train.py options...]"
  exit 0
fi
devices=8
if is_positional "$@" && [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  devices=$1
  shift
fi
DEVICE_TARGET=GPU bash "$ROOT/scripts/run_distribute_train_cpu.sh" "$devices" "$@"
