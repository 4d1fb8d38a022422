"""A web server started before ``collectstatic`` (a hand-started gunicorn after a ``git pull``) answered 500 on every
page and said nothing at its start; it now says why in its first log lines (workbench/wsgi.py)."""

from __future__ import annotations

import json
import logging
import runpy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
MANIFEST = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}


def test_the_web_server_says_at_its_start_that_static_files_are_not_collected(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    # wsgi.py's django.setup() configures logging again (pytest's capture handler goes): take the logger's calls.
    monkeypatch.setattr(logging.getLogger("workbench.wsgi"), "error", said.append)
    settings.STORAGES = {**settings.STORAGES, "staticfiles": MANIFEST}
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    runpy.run_path(str(ROOT / "workbench" / "wsgi.py"))
    assert len(said) == 1 and "Static files are not collected (staticfiles.json is missing in" in said[0], said
    assert "manage.py collectstatic --noinput" in said[0]

    said.clear()
    settings.STATIC_ROOT.mkdir()
    (settings.STATIC_ROOT / "staticfiles.json").write_text(json.dumps({"paths": {}, "version": "1.1"}))
    runpy.run_path(str(ROOT / "workbench" / "wsgi.py"))
    assert said == []  # collected: nothing to say


def test_a_storage_without_a_manifest_needs_no_collecting(settings: Any, tmp_path: Path) -> None:
    from workbench.checks import uncollected_static_warning

    settings.STATIC_ROOT = tmp_path / "nothing-here"  # the tests' plain storage serves from the apps' folders
    assert uncollected_static_warning() == ""
