"""The Content-Security-Policy every HTML page is served with.

The pages run only the workbench's own script files (``static/``: htmx and the page scripts, all vendored); no
template holds an inline ``<script>`` or an ``on…=``/``hx-on`` handler, and htmx is told not to evaluate code
(``allowEval``) nor to inject its indicator ``<style>`` (``base.html``'s ``htmx-config``; the indicator rules are
in ``workbench.css``). So a title, a transcript or a CoT that slipped past autoescaping still cannot run script.

Media is this site's, or, with object storage, the store's: the media view redirects ``<video>`` and ``<img>`` to a
presigned URL, whose origin (``workbench.storage.playback_origin``) the policy names exactly.

A per-request nonce (``request.csp_nonce``, ``{{ csp_nonce }}`` in templates) is allowed for scripts and styles: the
500 page, drawn without static files, keeps its one ``<style>`` by it. ``CSP_REPORT_ONLY`` sends the same policy as
``Content-Security-Policy-Report-Only`` (a browser reports, blocks nothing) to roll it out.

Reports: the policy names a report address both ways, ``report-uri`` (browsers without the Reporting API) and
``report-to csp-endpoint`` with a ``Reporting-Endpoints`` header naming it (the Reporting API; a browser that knows it
ignores ``report-uri``). The address is ``CSP_REPORT_URI`` when set, else this site's collector (``/csp-report/``,
``workbench.csp_reports``); ``CSP_REPORTING`` off names none.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse

from workbench.storage import playback_origin

logger = logging.getLogger(__name__)

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


REPORTING_ENDPOINTS_HEADER = "Reporting-Endpoints"
REPORT_ENDPOINT_NAME = "csp-endpoint"


def csp_policy(*, nonce: str, media_origin: str | None = None, report_uri: str = "", report_to: bool = False) -> str:
    """The policy's text for one response: its nonce, and the object store's origin when media come from there."""
    media = " ".join(["'self'", *([media_origin] if media_origin else [])])
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        # data: for the images stylesheets draw inline (Swagger UI's icons) and the 500 page's empty favicon.
        f"img-src {media} data:",
        f"media-src {media}",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",  # as X-Frame-Options: DENY; no page is meant to be framed
        "form-action 'self'",
    ]
    if report_uri:
        directives.append(f"report-uri {report_uri}")
    if report_to:  # the Reporting-Endpoints header names the endpoint
        directives.append(f"report-to {REPORT_ENDPOINT_NAME}")
    return "; ".join(directives)


def csp_report_uri() -> str:
    """Where browsers send reports (``report-uri``): CSP_REPORT_URI, else this site's collector; empty with
    CSP_REPORTING off."""
    if not settings.CSP_REPORTING:
        return ""
    if settings.CSP_REPORT_URI:
        return str(settings.CSP_REPORT_URI)
    try:
        return reverse("csp-report")
    except NoReverseMatch:  # a URLconf without the collector (a test's own): no report address, the page still served
        return ""


def _reporting_endpoint(request: HttpRequest, uri: str) -> str | None:
    """``uri`` as the absolute URL the ``Reporting-Endpoints`` header names; None where this request's host cannot
    make one (the 400 page of a refused Host: its policy keeps ``report-uri`` alone)."""
    try:
        absolute = request.build_absolute_uri(uri)
    except DisallowedHost:
        return None
    return absolute if '"' not in absolute and "\\" not in absolute else None


class ContentSecurityPolicyMiddleware:
    """Give each request a nonce and each HTML response the policy (``csp_policy``), unless the view set one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if settings.DEBUG and response.status_code in (404, 500):
            return response  # Django's debug pages (development only) run their own inline script and styles
        header = REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER
        if HEADER in response or REPORT_ONLY_HEADER in response:
            return response
        report_uri = csp_report_uri()
        endpoint = _reporting_endpoint(request, report_uri) if report_uri else None
        response[header] = csp_policy(
            nonce=nonce, media_origin=_media_origin(), report_uri=report_uri, report_to=endpoint is not None
        )
        if endpoint is not None:
            response[REPORTING_ENDPOINTS_HEADER] = f'{REPORT_ENDPOINT_NAME}="{endpoint}"'
        return response


def _media_origin() -> str | None:
    """``playback_origin()``, or None (media blocked, the page still served) when the object-storage settings name no
    valid bucket or endpoint: ``manage.py up``'s storage check says what is wrong with them."""
    try:
        return playback_origin()
    except Exception as exc:  # botocore's refusal of a bucket name, a malformed endpoint: any, the page is served
        logger.warning("Content-Security-Policy: no media origin from the object-storage settings: %s", exc)
        return None


def csp_context(request: HttpRequest) -> dict[str, str]:
    """``{{ csp_nonce }}``: the nonce for an inline ``<script>`` or ``<style>`` a template cannot do without."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
