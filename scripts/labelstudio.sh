#!/usr/bin/env bash
# Installs Label Studio into its OWN virtual environment (var/labelstudio-venv): it pins its own Django/DRF,
# which must not leak into the workbench's .venv. Used by the Label Studio integration test and by anyone who
# wants a local LS to export review queues to. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LABEL_STUDIO_VENV:-var/labelstudio-venv}"
VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [[ -x "$VENV/bin/label-studio" ]]; then
  exit 0
fi
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# --no-compile: Python compiles what Label Studio imports when it first runs; the rest (most of its
# 11,000 .py files) is never byte-compiled, which spared the test run it overlaps ~30 s of CPU.
"$VENV/bin/python" -m pip install -q --no-compile "label-studio${VERSION:+==$VERSION}"
echo "==> label-studio installed in $VENV"
