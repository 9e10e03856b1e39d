#!/usr/bin/env bash
# Set up .venv if needed, then run the demo on the embedded local Earth Engine server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/eexarray demo --output demo-output "$@"
