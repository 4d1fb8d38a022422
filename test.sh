#!/usr/bin/env bash
# One command: install what is missing, lint, then run the whole test suite against the real
# embedded PostgreSQL and Redis (or DATABASE_URL / REDIS_URL) with a real Celery worker.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/pytest "$@"
