#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite against local servers only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,demo
exec .venv/bin/python -m pytest -q "$@"
