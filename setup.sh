#!/usr/bin/env bash
# Sets up .venv with the CPU build of PyTorch and this package (editable) at the
# pinned development versions. Safe to run again: it only installs what is missing.
#   ./setup.sh                 the package and its development tools
#   ./setup.sh --with-browser  also Debian's chromium (as root, via apt-get) for the report's browser test
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The CPU wheel first: a bare "torch" requirement would pull the CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
      || echo "setup.sh: chromium could not be installed; the browser test will be skipped" >&2
  else
    echo "setup.sh: install Debian's chromium package for the browser test (needs root)" >&2
  fi
fi
