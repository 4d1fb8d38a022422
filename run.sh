#!/usr/bin/env bash
# One command: install what is missing, then run the workbench on http://127.0.0.1:8000
# (embedded PostgreSQL + Redis, Celery workers, web server, demo videos). Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")"
WORKBENCH_BROWSER_TESTS=0 bash scripts/setup.sh
exec .venv/bin/python manage.py up "$@"
