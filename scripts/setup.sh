#!/usr/bin/env bash
# Installs everything the workbench needs on a Debian/Ubuntu machine with Python 3.11:
# system packages (apt) and a virtual environment at .venv with the pinned CPU dependency set.
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg espeak-ng fonts-dejavu-core fonts-wqy-microhei libpq5)
if [[ "${WORKBENCH_BROWSER_TESTS:-1}" == "1" ]]; then APT_PACKAGES+=(chromium); fi

# Node.js + npm run the local S3-compatible server (s3rver) the tests and bench/storage.py start.
command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "==> apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements/cpu.txt requirements/dev.txt requirements/constraints.txt requirements/nodeps.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "==> pip: installing the CPU dependency set into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  # --no-compile: pip would byte-compile all 20,000 .py files of the set one by one (70 s of CPU on this
  # machine); Python compiles a module when it is first imported and keeps that .pyc, and the tests
  # import under a third of the set's source.
  # torch first, pinned to the CPU build, so nothing below pulls a CUDA build.
  .venv/bin/python -m pip install -q --no-compile "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  .venv/bin/python -m pip install -q --no-compile -r requirements/cpu.txt -r requirements/dev.txt -c requirements/constraints.txt
  .venv/bin/python -m pip install -q --no-compile --no-deps -r requirements/nodeps.txt
  echo "$want" > $stamp
fi
# The test suite's S3-compatible server: s3rver from the npm registry, pinned by the committed lockfile.
npm_stamp=scripts/s3rver/node_modules/.lock.sha256
npm_want=$(sha256sum scripts/s3rver/package-lock.json | cut -d' ' -f1)
if [[ ! -f $npm_stamp || "$(cat $npm_stamp)" != "$npm_want" ]]; then
  echo "==> npm: installing s3rver into scripts/s3rver/node_modules"
  (cd scripts/s3rver && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$npm_want" > $npm_stamp
fi
echo "==> setup done ($(du -sh .venv | cut -f1) in .venv)"
