"""Test override: a private embedded Redis and media folder per test run (or benchmark), removed
when that process exits (``workbench.embedded.private_run_dirs``), fast password hashing.

The database is the same embedded (or DATABASE_URL) server; pytest-django creates and drops
a test database named per process, so parallel runs do not collide.
"""

import os
from pathlib import Path

# Tests keep their own embedded PostgreSQL, models and training output apart from a running workbench.
os.environ.setdefault("WORKBENCH_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

if "WORKBENCH_REDIS_DIR" not in os.environ:  # else a worker started by a test: it shares its run's
    from workbench.embedded import private_run_dirs

    _redis_dir, _media_dir = private_run_dirs()
    os.environ["WORKBENCH_REDIS_DIR"] = str(_redis_dir)
    os.environ.setdefault("MEDIA_ROOT", str(_media_dir))
os.environ["WORKBENCH_TESTING"] = "1"

from workbench.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# STORAGES comes from settings: the local filesystem, or the S3 server a test (or bench) points it at.
# Tests render templates without running collectstatic first: plain static URLs, no manifest.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# A worker waits on Redis (BRPOP) this long before it notices it was asked to stop: the tests start and
# stop a worker per test, so a short wait keeps each stop from costing a whole second (Redis >= 6 takes
# fractions). Production keeps kombu's 1 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.1}  # noqa: F405

# The tests' stage-1 fixtures hold 12-30 labelled items; the minimum itself is tested with its default.
CASCADE_MIN_TRAIN_LABELS = 10

# The tests' webhook receivers listen on loopback (the refusal itself is tested with this off).
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
