#!/usr/bin/env bash
# The declared dependency floors hold: in a throwaway venv, install eexarray's direct
# dependencies (core and the extras below) at the lowest versions pyproject.toml allows
# (uv's --resolution lowest-direct; wheels only), then eexarray itself, and run
# .ci/floors_smoke.py. Raise a floor in pyproject.toml when this fails.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
extras=(zarr netcdf progress demo distributed)
work=$(mktemp -d "${TMPDIR:-/tmp}/eexarray-floors.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$python_bin" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet uv
uv="$work/tools/bin/uv"
"$uv" venv --quiet --python "$python_bin" "$work/venv"
extra_args=()
for extra in "${extras[@]}"; do extra_args+=(--extra "$extra"); done
"$uv" pip install --quiet --python "$work/venv/bin/python" --resolution lowest-direct --only-binary :all: \
  -r pyproject.toml "${extra_args[@]}"
# eexarray itself from a copy of the sources (no build/ left in the clone), without dependencies.
mkdir "$work/src"
cp -R eexarray pyproject.toml README.md "$work/src/"
"$uv" pip install --quiet --python "$work/venv/bin/python" --no-deps "$work/src"
cp .ci/floors_smoke.py "$work/"
cd "$work"  # away from the clone: the installed eexarray is the one imported
"$work/venv/bin/python" floors_smoke.py
