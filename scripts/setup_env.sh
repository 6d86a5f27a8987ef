#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install everything:
# MindSpore 2.10 + numpy<2, megatron-core 0.16.1, the tokenizers/transformers stack,
# real torch 2.13.0 (the reference backend), test tools, and this project (editable).
# Usage: bash scripts/setup_env.sh        (env VENV=path to choose the venv location)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
fi
STAMP="$VENV/.msshim-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    # torch first so that no other package pulls a CUDA build of it.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e "$ROOT[reference,test]"
    # The .pth that honours SHIM_BACKEND=mindspore at interpreter start (see shim/README.md).
    "$VENV/bin/python" -m shim install-pth
    touch "$STAMP"
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("mindspore", "numpy", "megatron-core", "torch", "transformers"):
    print(f"{name:14s} {md.version(name)}")
PY
