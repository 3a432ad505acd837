#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: bash scripts/test.sh [pytest options...]
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .
shellcheck_bin=$(command -v shellcheck || true)
if [[ -n "$shellcheck_bin" ]]; then
  "$shellcheck_bin" -x scripts/*.sh .ci/run
fi
# A missing MindSpore is a failure here, not a skip.
DS2_REQUIRE_MINDSPORE=1 "$PYTHON" -m pytest "$@"
