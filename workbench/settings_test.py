"""Test override: a private embedded Redis and media folder per test run, fast password hashing.

The database is the same embedded (or DATABASE_URL) server; pytest-django creates and drops
a test database named per process, so parallel runs do not collide.
"""

import os
import tempfile

os.environ.setdefault("WORKBENCH_REDIS_DIR", tempfile.mkdtemp(prefix="wbredis-"))
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="wbmedia-"))
os.environ["WORKBENCH_TESTING"] = "1"

from workbench.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
