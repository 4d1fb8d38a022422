"""Content-Security-Policy violation reports: the same-origin collector the policy names by default
(``/csp-report/``, ``workbench.csp``), what it accepts, and how reports are kept.

Browsers send reports without credentials and anyone can send one, so the collector trusts nothing in them: it is
open to all but small (``CSP_REPORT_MAX_BYTES``, refused from the declared length before a byte is read), rate-limited
per client address (``CSP_REPORT_RATE_LIMIT``), exempt from the CSRF check (a browser's report carries no token),
and a body it cannot read is a 400 with a short reason, never a 500. Two shapes are read: the legacy ``report-uri``
body (``application/csp-report``: ``{"csp-report": {...}}``) and the Reporting API's (``application/reports+json``:
a list of reports, ``type`` ``csp-violation`` ones kept, others ignored).

Each report is folded into one row per (day, directive, blocked URI, document path) (``CspViolation.count``), so a
page that trips the policy on every load, or a client sending the same report in a loop, is one row. The blocked
URI is kept as its origin and path (its query may carry someone's token), the document as its path. Past
``CSP_VIOLATION_ROWS_PER_DAY`` distinct rows in a day, new kinds of report are folded into one row per directive
(``OVERFLOW_BLOCKED``; a directive no browser reports into one ``OVERFLOW_DIRECTIVE`` row): made-up reports cannot
grow the table without bound. Days older than
``CSP_REPORT_RETENTION_DAYS`` are deleted by beat, daily (``csp_violations_purge``)."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from workbench.models import CspViolation
from workbench.signin import signin_address, signin_client
from workbench.text import shown_text, storable_text
from workbench.throttles import AtomicRateThrottle

logger = logging.getLogger(__name__)

# A browser's report is well under 4 KB (a Reporting API batch a few of them); the original policy is the largest part.
CSP_REPORT_MAX_BYTES = 32 * 1024
# The most reports one Reporting API body may hold.
CSP_REPORTS_PER_BODY = 50
# Distinct rows a day may get before new kinds are folded into one row per directive.
CSP_VIOLATION_ROWS_PER_DAY = 1000
OVERFLOW_BLOCKED = "(more kinds than the day's row limit)"
# Past the day's row limit a kind is folded into its directive's row: a directive a browser can report, else this one
# row (a made-up directive per report made a new overflow row each, and the limit held nothing back).
OVERFLOW_DIRECTIVE = "(other)"
CSP_DIRECTIVES = frozenset(
    [
        "base-uri",
        "block-all-mixed-content",
        "child-src",
        "connect-src",
        "default-src",
        "fenced-frame-src",
        "font-src",
        "form-action",
        "frame-ancestors",
        "frame-src",
        "img-src",
        "manifest-src",
        "media-src",
        "navigate-to",
        "object-src",
        "plugin-types",
        "prefetch-src",
        "report-to",
        "report-uri",
        "require-sri-for",
        "require-trusted-types-for",
        "sandbox",
        "script-src",
        "script-src-attr",
        "script-src-elem",
        "style-src",
        "style-src-attr",
        "style-src-elem",
        "trusted-types",
        "upgrade-insecure-requests",
        "webrtc",
        "worker-src",
    ]
)
# A row's count stops at the column's largest value (PostgreSQL's integer): past it every report of that kind was a
# 500 ("integer out of range"), and the overflow row, which takes every made-up kind, gets there first.
CSP_VIOLATION_COUNT_MAX = 2**31 - 1
LEGACY_TYPES = ("application/csp-report", "application/json")
REPORTING_API_TYPE = "application/reports+json"

_DIRECTIVE = re.compile(r"[a-z][a-z0-9-]{0,63}")
_BLOCKED_MAX = CspViolation._meta.get_field("blocked").max_length or 300
_DOCUMENT_MAX = CspViolation._meta.get_field("document_path").max_length or 300


class CspReportRefused(Exception):
    """A report the collector does not take; ``status`` the answer (400, 413), the message a short reason."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CspViolationKey:
    directive: str
    blocked: str
    document_path: str
    disposition: str


class CspReportRateThrottle(AtomicRateThrottle):
    """Reports per client address (CSP_REPORT_RATE_LIMIT), counted in the shared Redis cache; the address as the sign-in
    throttle reads it (the proxy's behind WORKBENCH_HTTPS). Redis down: reports are taken (and still folded)."""

    scope = "csp-report"

    def get_rate(self) -> str | None:
        return str(settings.CSP_REPORT_RATE_LIMIT)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return f"throttle:{self.scope}:{csp_report_client(signin_address(request))}"


def csp_report_client(address: str) -> str:
    """Whose rate a report counts against: an IPv4 address, or an IPv6 address's /64 (one host or one home network is
    given a whole /64: counted per address, it could send from a new address each time and meet no limit). The
    sign-in counts' rule (``workbench.signin.signin_client``)."""
    return signin_client(address)


def csp_report_rate_wait(request: HttpRequest) -> int | None:
    """Count this report against its client's rate: None when it may go on, else the seconds to wait."""
    throttle = CspReportRateThrottle()
    return None if throttle.allow_request(request, None) else throttle.retry_after()


def csp_report_body(request: HttpRequest) -> bytes:
    """The request's body, at most ``CSP_REPORT_MAX_BYTES``: a larger declared length is refused before any of it is
    read, and no more than the limit is ever read whatever was declared."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise CspReportRefused("Content-Length is not a number.") from None
    if declared > CSP_REPORT_MAX_BYTES:
        raise CspReportRefused(f"A report may be at most {CSP_REPORT_MAX_BYTES:,} bytes.", status=413)
    body = request.read(CSP_REPORT_MAX_BYTES + 1)
    if len(body) > CSP_REPORT_MAX_BYTES:
        raise CspReportRefused(f"A report may be at most {CSP_REPORT_MAX_BYTES:,} bytes.", status=413)
    return body


def csp_reports_from(request: HttpRequest) -> list[CspViolationKey]:
    """The violations a report request holds: its type checked before its body is read (``csp_report_body``)."""
    kind = (request.content_type or "").split(";")[0].strip().lower()
    if kind not in (*LEGACY_TYPES, REPORTING_API_TYPE):
        raise CspReportRefused(
            f"Send a report as {LEGACY_TYPES[0]} (report-uri) or {REPORTING_API_TYPE} (report-to), not {kind[:60]!r}."
        )
    return csp_reports_read(body=csp_report_body(request), kind=kind)


def csp_reports_read(*, body: bytes, kind: str) -> list[CspViolationKey]:
    """The violations ``body`` reports (``kind``, its content type, says which shape), each trimmed to what is kept; a
    body that is not a report is refused (``CspReportRefused``, a short reason)."""
    try:
        data = storable_text(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CspReportRefused("The report is not JSON.") from None
    if kind == REPORTING_API_TYPE:
        if not isinstance(data, list):
            raise CspReportRefused("A Reporting API body is a list of reports.")
        if len(data) > CSP_REPORTS_PER_BODY:
            raise CspReportRefused(f"At most {CSP_REPORTS_PER_BODY} reports in one body.")
        found = []
        for number, report in enumerate(data, start=1):
            if not isinstance(report, dict):
                raise CspReportRefused(f"Report {number} is not an object.")
            if report.get("type") != "csp-violation":
                continue  # another kind of report (deprecation, intervention): not this collector's
            fields = report.get("body")
            if not isinstance(fields, dict):
                raise CspReportRefused(f"Report {number} has no body object.")
            found.append(
                _violation(
                    directive=fields.get("effectiveDirective"),
                    blocked=fields.get("blockedURL"),
                    document=fields.get("documentURL") or report.get("url"),
                    disposition=fields.get("disposition"),
                )
            )
        return found
    fields = data.get("csp-report") if isinstance(data, dict) else None
    if not isinstance(fields, dict):
        raise CspReportRefused('A report-uri body is {"csp-report": {...}}.')
    return [
        _violation(
            directive=fields.get("effective-directive") or fields.get("violated-directive"),
            blocked=fields.get("blocked-uri"),
            document=fields.get("document-uri"),
            disposition=fields.get("disposition"),
        )
    ]


def _violation(*, directive: Any, blocked: Any, document: Any, disposition: Any) -> CspViolationKey:
    name = directive.split()[0].lower() if isinstance(directive, str) and directive.strip() else ""
    if not _DIRECTIVE.fullmatch(name):
        raise CspReportRefused("The report names no directive.")
    return CspViolationKey(
        directive=name,
        blocked=_blocked(blocked if isinstance(blocked, str) else ""),
        document_path=_document_path(document),
        disposition=CspViolation.Disposition.REPORT if disposition == "report" else CspViolation.Disposition.ENFORCE,
    )


def _document_path(value: Any) -> str:
    """The reporting page's path; "" for what is no URL (a made-up report's number, or ``http://[x``, which
    ``urlsplit`` refuses: it was a 500 on this open endpoint)."""
    if not isinstance(value, str):
        return ""
    try:
        return _trimmed(urlsplit(value).path, _DOCUMENT_MAX)
    except ValueError:
        return ""


def _blocked(value: str) -> str:
    """A URL as its origin and path (no user, query or fragment: they may hold a token); a keyword ('inline',
    'eval') as it is; another scheme ('data:…', 'blob:…') as the scheme alone."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return _trimmed(value.split("?")[0], _BLOCKED_MAX)
    if parts.scheme in ("http", "https", "ws", "wss") and host:
        origin = f"{parts.scheme}://{host}{f':{port}' if port else ''}"
        return _trimmed(origin + parts.path, _BLOCKED_MAX)
    if parts.scheme and ":" in value:
        return _trimmed(parts.scheme, _BLOCKED_MAX)
    return _trimmed(value, _BLOCKED_MAX)


def _trimmed(value: str, limit: int) -> str:
    value = shown_text(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


_FOLD_SQL = """
INSERT INTO {table} (day, directive, blocked, document_path, disposition, count, first_seen, last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (day, directive, blocked, document_path)
DO UPDATE SET count = LEAST({table}.count::bigint + EXCLUDED.count, {count_max}), last_seen = EXCLUDED.last_seen,
              disposition = EXCLUDED.disposition
"""


def csp_violations_record(*, reports: list[CspViolationKey]) -> None:
    """Fold ``reports`` into today's rows: one statement per distinct violation, each an insert or a count added to the
    row already there (concurrent reports of the same violation add up; none is lost to a race)."""
    if not reports:
        return
    now = timezone.now()
    day = now.date()
    table = connection.ops.quote_name(CspViolation._meta.db_table)
    counted = Counter(reports)
    # Rows this body may still add: counted down as it adds them (one body of 50 new kinds made 50 rows past the limit).
    room = CSP_VIOLATION_ROWS_PER_DAY - CspViolation.objects.filter(day=day).count()
    with connection.cursor() as cursor:
        for key, n in counted.items():
            new = room < len(counted) and not (  # near the limit or past it: is this kind a row already?
                CspViolation.objects.filter(
                    day=day, directive=key.directive, blocked=key.blocked, document_path=key.document_path
                ).exists()
            )
            if new and room > 0:
                room -= 1
            elif new:
                directive = key.directive if key.directive in CSP_DIRECTIVES else OVERFLOW_DIRECTIVE
                key = CspViolationKey(directive, OVERFLOW_BLOCKED, "", key.disposition)
            cursor.execute(
                _FOLD_SQL.format(table=table, count_max=CSP_VIOLATION_COUNT_MAX),
                [day, key.directive, key.blocked, key.document_path, key.disposition, n, now, now],
            )


def csp_violations_recent(*, days: int = 7, limit: int = 20) -> QuerySet[CspViolation]:
    """The violations reported in the last ``days`` days, latest first: what the operations page lists."""
    since = timezone.now().date() - timedelta(days=days - 1)
    return CspViolation.objects.filter(day__gte=since).order_by("-last_seen", "-pk")[:limit]


def csp_violations_purge(*, now: datetime | None = None) -> int:
    """Delete the rows of days older than ``CSP_REPORT_RETENTION_DAYS`` (today is day 1): without it, one row per day
    per kind of violation stays for good. Idempotent (one DELETE); returns how many rows were deleted."""
    today = timezone.localdate(now) if now else timezone.localdate()
    oldest_kept = today - timedelta(days=settings.CSP_REPORT_RETENTION_DAYS - 1)
    deleted = CspViolation.objects.filter(day__lt=oldest_kept).delete()[0]
    if deleted:
        logger.info("purged %s CSP violation rows of days before %s", deleted, oldest_kept)
    return deleted
