"""Test override: a private embedded Redis and media folder per test run (or benchmark), and per pytest-xdist
worker, removed when that process exits (``workbench.embedded.private_run_dirs``), fast password hashing.

The database is the same embedded (or DATABASE_URL) server; pytest-django creates and drops
a test database named per process, so parallel runs do not collide.
"""

import os
from pathlib import Path

# Tests keep their own embedded PostgreSQL, models and training output apart from a running workbench.
os.environ.setdefault("WORKBENCH_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

# Whose run folders these are: "" for a plain pytest process, "gw0", "gw1"... for each pytest-xdist worker. A worker
# that a test starts (a subprocess) inherits its test process's environment and shares that process's folders; an
# xdist worker inherits its controller's environment too, but must not share them: on one Redis two workers' tests
# would purge and consume each other's Celery queues and clear each other's caches, and on one MEDIA_ROOT or
# TRAINING_OUTPUT_DIR write the same file names (each worker's test database numbers its rows from 1: a job's start
# removed the output folder of the other worker's job of the same id as a stale one).
_run_for = os.environ.get("PYTEST_XDIST_WORKER", "")
_inherited_for = os.environ.get("WORKBENCH_TEST_RUN_FOR")
_controllers = _inherited_for not in (None, _run_for)  # this xdist worker holds its controller's environment
if "WORKBENCH_REDIS_DIR" not in os.environ or _controllers:
    from workbench.embedded import private_run_dirs

    _redis_dir, _media_dir = private_run_dirs()
    os.environ["WORKBENCH_REDIS_DIR"] = str(_redis_dir)
    # A MEDIA_ROOT given by whoever started the run is kept; the one this file chose for the controller is not.
    if os.environ.get("MEDIA_ROOT") in (None, os.environ.get("WORKBENCH_TEST_RUN_MEDIA")):
        os.environ["MEDIA_ROOT"] = str(_media_dir)
    # The training output the same way, beside the media folder (the tiny base model under MODELS_DIR stays shared:
    # it is built once, renamed into place).
    _training_dir = _media_dir.parent / "training"
    if os.environ.get("TRAINING_OUTPUT_DIR") in (None, os.environ.get("WORKBENCH_TEST_RUN_TRAINING")):
        os.environ["TRAINING_OUTPUT_DIR"] = str(_training_dir)
    if _controllers and os.environ.get("REDIS_URL"):
        # A real Redis (REDIS_URL) is one server for all: each worker takes the database after the run's, gw0 the next.
        from urllib.parse import urlsplit

        _url = urlsplit(os.environ["REDIS_URL"])
        if _url.scheme not in ("redis", "rediss") or not (_url.path.strip("/") or "0").isdigit():
            raise RuntimeError(
                f"pytest-xdist workers each need their own Redis database: give REDIS_URL as redis://host:port/N, "
                f"not {os.environ['REDIS_URL']!r}"
            )
        _db = int(_url.path.strip("/") or "0") + 1 + int(_run_for.removeprefix("gw"))
        os.environ["REDIS_URL"] = _url._replace(path=f"/{_db}").geturl()
    os.environ["WORKBENCH_TEST_RUN_FOR"] = _run_for
    os.environ["WORKBENCH_TEST_RUN_MEDIA"] = str(_media_dir)
    os.environ["WORKBENCH_TEST_RUN_TRAINING"] = str(_training_dir)
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

# Per-user rates out of the way of tests that upload or call the API many times as one user (the suite's fixtures
# reuse users); the limits themselves are tested with low rates set per test (tests/workbench/test_user_rate_limits.py).
USER_API_RATE_LIMIT = "100000/min"
UPLOAD_RATE_LIMIT = "100000/hour"
