"""Test override: a private embedded Redis and media folder per test run, fast password hashing.

The database is the same embedded (or DATABASE_URL) server; pytest-django creates and drops
a test database named per process, so parallel runs do not collide.
"""

import os
import tempfile
from pathlib import Path

# Tests keep their own embedded PostgreSQL, models and training output apart from a running workbench.
os.environ.setdefault("WORKBENCH_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test"))

os.environ.setdefault("WORKBENCH_REDIS_DIR", tempfile.mkdtemp(prefix="wbredis-"))
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="wbmedia-"))
os.environ["WORKBENCH_TESTING"] = "1"

from workbench.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
