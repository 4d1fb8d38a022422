"""Signing in through the sign-in form, as the browser tests do (their users have the factories' password), and where
the walks' screenshots go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PASSWORD = "pw-test-123"  # tests.factories.UserFactory's
SCREEN = {"width": 1440, "height": 900}  # the size the screens are checked and their screenshots taken at


def sign_in(page: Any, username: str, *, screen: bool = False) -> None:
    """Sign ``username`` in on ``/login/`` (typed, then Enter) and check it worked; with ``screen``, the page is
    set to 1440x900 first."""
    if screen:
        page.set_viewport_size(SCREEN)
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login/" not in page.url, "login failed"


def shots_dir() -> Path:
    """Where the walks' browser tests put their screenshots: ``$SHOTS_DIR/<checkout's folder name>``."""
    where = Path(os.environ.get("SHOTS_DIR", "/work/shots")) / Path.cwd().name
    where.mkdir(parents=True, exist_ok=True)
    return where
