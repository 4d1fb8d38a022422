"""Chromium trips the Content-Security-Policy on a page of the workbench and its report reaches the site's own
collector (``/csp-report/``, workbench/csp_reports.py) through the policy's default ``report-uri``: the address, the
request and the body are Chromium's own, the row is what an admin reads.

The page's ``report-to csp-endpoint`` and ``Reporting-Endpoints`` header are taken off on the way in: a browser that
has the Reporting API then ignores ``report-uri``, and this headless Chromium queues such a report but never uploads it
(DevTools' Reporting API events show it Queued, then Pending, with no attempt, also with ``--short-reporting-delay``).
The Reporting API's body is read in tests/workbench/test_csp_reports.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from moderation.review.services import review_queue_default
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from workbench.models import CspViolation

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_a_violation_in_chromium_is_reported_to_the_collector_and_kept(page, make_user) -> None:  # type: ignore[no-untyped-def]
    review_queue_default()
    served: list[dict[str, str]] = []

    def report_uri_only(route: Any) -> None:
        response = route.fetch()
        headers = dict(response.headers)
        served.append(dict(headers))
        headers.pop("reporting-endpoints", None)
        headers["content-security-policy"] = headers["content-security-policy"].replace("; report-to csp-endpoint", "")
        route.fulfill(response=response, headers=headers)

    page.route("**/login/**", report_uri_only)
    response = page.goto("/login/?next=/review/")
    assert response is not None and response.status == 200
    [headers] = served
    assert "; report-uri /csp-report/; report-to csp-endpoint" in headers["content-security-policy"]
    assert headers["reporting-endpoints"].startswith('csp-endpoint="http://')

    # An image from another origin: img-src allows this site's (and data:) only.
    page.evaluate(
        """() => { const img = document.createElement("img");
                   img.src = "https://blocked.example/pixel.png?user=secret"; document.body.append(img); }"""
    )

    deadline = time.monotonic() + 20
    while not CspViolation.objects.filter(directive="img-src").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    row = CspViolation.objects.get(directive="img-src")
    assert (row.blocked, row.document_path, row.disposition, row.count) == (
        "https://blocked.example/pixel.png",
        "/login/",
        "enforce",
        1,
    )

    # An admin reads it on the operations page.
    page.unroute("**/login/**")
    sign_in(page, make_user("admin").username, screen=True)
    page.goto("/ops/")
    panel = page.locator("#ops-csp")
    assert "https://blocked.example/pixel.png" in panel.inner_text() and "/login/" in panel.inner_text()
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "csp-report-ops.png"))
