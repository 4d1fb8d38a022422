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
status=0
.venv/bin/pytest "$@" || status=$?
if [[ -z "${DATABASE_URL:-}" && "${WORKBENCH_KEEP_DB:-0}" != "1" ]]; then
  # The tests' embedded PostgreSQL (var/test) outlives each process on purpose; stop it once the suite is done.
  .venv/bin/python -c "from pathlib import Path; from workbench.embedded import stop_postgres; stop_postgres(Path('var/test').resolve())" || true
fi
exit $status
