#!/usr/bin/env bash
# Shared helpers for the launchers (sourced, not run).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export GLOG_v="${GLOG_v:-3}"
PYTHON="${PYTHON:-python3}"
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
