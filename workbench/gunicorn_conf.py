"""gunicorn's settings: `gunicorn -c python:workbench.gunicorn_conf workbench.wsgi:application` (compose's web
service, the image's default command, `manage.py up`). Values come from Django's settings, where the environment
is read; a command-line flag (`--bind`, `--workers`) still wins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

bind = "0.0.0.0:8000"
workers = settings.WEB_CONCURRENCY
timeout = settings.WEB_TIMEOUT
# SIGTERM: stop accepting, let requests in flight finish this long, then stop (SIGKILL from the orchestrator after
# its own grace period, which must be longer).
graceful_timeout = settings.WEB_GRACEFUL_TIMEOUT
keepalive = 5  # behind a proxy that keeps connections open
# gunicorn's control socket (`gunicorn ctl`): this node's state folder, not the one `$HOME/.gunicorn/gunicorn.ctl` of
# every gunicorn on the machine, which each start took from the last (a second checkout's `./run.sh`, a stop
# unlinking the running one's socket).
control_socket = str(settings.VAR_DIR / "gunicorn.ctl")
# Workers' heartbeat files on tmpfs (gunicorn's advice for containers: on a disk-backed overlay filesystem a
# blocked write makes the arbiter take a busy worker for a dead one). gunicorn makes them with mkstemp.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108

# One access line per request, with the request id the response carries (workbench.middleware.RequestIdMiddleware),
# through the same handler, format and stream (stdout) as the application's own lines (settings.LOGGING).
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
_logging: dict[str, Any] = settings.LOGGING
logconfig_dict = {
    **_logging,
    "loggers": {
        **_logging["loggers"],
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
}
