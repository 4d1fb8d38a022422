#!/usr/bin/env bash
# One command: install what is missing, lint, then run the whole test suite against the real
# embedded PostgreSQL and Redis (or DATABASE_URL / REDIS_URL) with a real Celery worker.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/lint-imports  # the import layers (pyproject.toml [tool.importlinter])
# The tests run on pytest-xdist workers, one per core (`-n auto`; WORKBENCH_TEST_WORKERS=N for N, 0 for one process).
# `--dist load` hands each worker the tests in collection order, so each keeps pytest-django's order (database
# tests, then transactional ones, which empty the tables). An -n/--numprocesses or --dist given here wins;
# -p no:xdist runs in one process.
workers=(-n "${WORKBENCH_TEST_WORKERS:-auto}") dist=(--dist load)
if [[ "${WORKBENCH_TEST_WORKERS:-auto}" == "0" ]]; then workers=() dist=(); fi
for arg in "$@"; do
  case "$arg" in
    -n* | --numprocesses*) workers=() ;;
    --dist*) dist=() ;;
    no:xdist) workers=() dist=() ;;
  esac
done
# Bytecode: setup.sh installs with --no-compile and counts on Python keeping each module's .pyc from its first import.
# Where PYTHONDONTWRITEBYTECODE is set (this machine's shells set it) nothing is kept: every test process (each xdist
# worker, each Celery worker, server or script a test starts) compiled torch, transformers, sklearn... from source
# again. The test run keeps them under var/pycache instead, beside nothing of the sources or the venv.
if [[ -n "${PYTHONDONTWRITEBYTECODE:-}" && -z "${PYTHONPYCACHEPREFIX:-}" ]]; then
  unset PYTHONDONTWRITEBYTECODE
  export PYTHONPYCACHEPREFIX="$PWD/var/pycache"
fi
status=0
.venv/bin/pytest "${workers[@]}" "${dist[@]}" "$@" || status=$?
if [[ -z "${DATABASE_URL:-}" && "${WORKBENCH_KEEP_DB:-0}" != "1" ]]; then
  # The tests' embedded PostgreSQL (var/test) outlives each process on purpose; stop it once the suite is done.
  .venv/bin/python -c "from pathlib import Path; from workbench.embedded import stop_postgres; stop_postgres(Path('var/test').resolve())" || true
fi
exit $status
