#!/usr/bin/env bash
# Sets up .venv with the CPU build of PyTorch and this package (editable) at the
# pinned development versions. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The CPU wheel first: a bare "torch" requirement would pull the CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
