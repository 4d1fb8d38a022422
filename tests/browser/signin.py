"""Signing the browser tests' users in (their users have the factories' password), and where the walks' screenshots
go."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PASSWORD = "pw-test-123"  # tests.factories.UserFactory's
SCREEN = {"width": 1440, "height": 900}  # the size the screens are checked and their screenshots taken at


def sign_in(page: Any, username: str, *, screen: bool = False, form: bool = False) -> None:
    """Sign ``username`` in for ``page``'s browser context; with ``screen``, the page is set to 1440x900 first.

    By default the session is made server-side (``Client.force_login``: the same ``login()``, session keys and
    ``user_logged_in`` signal as the form) and its cookie handed to the context, with no page loaded: the caller goes
    straight to the page it tests (the form costs two page loads, ~0.3 s a sign-in). The CSRF cookie comes with the
    first page that renders a form, as for any visitor. With ``form``, ``/login/`` is filled in (typed, then Enter)
    and the page is left where the sign-in lands: for tests about signing in, or about what a new sign-in changes
    (a rotated CSRF token)."""
    if screen:
        page.set_viewport_size(SCREEN)
    if form:
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login/" not in page.url, "login failed"
        return
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": _site(page)}])


def _site(page: Any) -> str:
    """The origin (``http://host:port/``) of the live server ``page`` is on, or of its context's ``base_url``
    (which Playwright keeps but does not expose) while it is still on ``about:blank``: the cookie's path is ``/``."""
    url = page.url if page.url.startswith("http") else page.context._impl_obj._options.get("baseURL")
    assert url, "sign_in needs a context made with base_url=live_server.url (or a page already on the site)"
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}/"


def shots_dir() -> Path:
    """Where the walks' browser tests put their screenshots: ``$SHOTS_DIR/<checkout's folder name>``."""
    where = Path(os.environ.get("SHOTS_DIR", "/work/shots")) / Path.cwd().name
    where.mkdir(parents=True, exist_ok=True)
    return where
