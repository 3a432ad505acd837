#!/usr/bin/env bash
# Shared helpers for the launchers (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export GLOG_v="${GLOG_v:-3}"
# The interpreter every launcher runs. PYTHON=/path/to/python overrides; otherwise the first of python3, python
# that has MindSpore (on the lab's image `python3` is an old system Python and `python` the one with MindSpore),
# else the first whose version MindSpore 2.10 supports (3.10-3.12), else python3 (setup.sh then says what to install).
export SUPPORTED_PYTHON="3.10-3.12"
# has_mindspore PY: true when PY can find the mindspore package (found, not imported: fast).
has_mindspore() {
  "$1" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mindspore') is None)" >/dev/null 2>&1
}
# supported_python PY: true when PY's version is one MindSpore 2.10 has wheels for.
supported_python() {
  "$1" -c "import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))" >/dev/null 2>&1
}
if [[ -z "${PYTHON:-}" ]]; then
  for check in has_mindspore supported_python; do
    for candidate in python3 python; do
      if command -v "$candidate" >/dev/null 2>&1 && "$check" "$candidate"; then
        PYTHON=$candidate
        break 2
      fi
    done
  done
  PYTHON=${PYTHON:-python3}
fi
export PYTHON

# abs_file PATH: print the absolute path of an existing file, or fail naming it.
abs_file() {
  if [[ ! -f "$1" ]]; then
    echo "error: file not found: $1" >&2
    exit 2
  fi
  echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}

# is_positional ARG: true when ARG is not an option (does not start with --).
is_positional() {
  [[ $# -ge 1 && "$1" != --* ]]
}

# run_logged LOG CMD...: run CMD with its output on the terminal and in LOG (through tee); when stdout already is
# LOG (the lab's `nohup bash scripts/... > train.log 2>&1 &`), write there once instead of twice.
run_logged() {
  local log=$1
  shift
  if [[ /dev/stdout -ef "$log" ]]; then
    "$@" 2>&1
  else
    "$@" 2>&1 | tee "$log"
  fi
}
