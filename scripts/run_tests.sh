#!/usr/bin/env bash
# Set up the environment (idempotent) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/run_tests.sh -k data_convert -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
exec "$ROOT/.venv/bin/python" -m pytest "$@"
