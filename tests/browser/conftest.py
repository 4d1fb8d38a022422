"""Chromium (Playwright) against the live test server, for the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


@contextmanager
def chromium_launched() -> Iterator[Any]:
    """A headless Chromium under Playwright, closed on leaving."""
    # Playwright's sync API runs an event loop; Django must not refuse ORM calls made beside it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for every test of this package (each test gets its own context from ``page``: its own cookies,
    storage, cache and permissions), rather than a Playwright driver and a Chromium started and stopped per test
    (1-2 s each). Package-scoped, not session-scoped: Playwright's event loop runs in this thread while it is
    open (``asyncio.run`` or ``async_to_sync`` would refuse to run), so it is closed before the rest of the suite.
    A module elsewhere that borrows ``page`` defines its own module-scoped ``browser`` (this one, imported into a
    module outside the package, would be pytest's session-scoped one)."""
    with chromium_launched() as chromium:
        yield chromium


@pytest.fixture
def page(browser, live_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
