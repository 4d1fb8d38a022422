"""The Content-Security-Policy's own report collector (``/csp-report/``, workbench/csp_reports.py): both report shapes
browsers send, folded per day so a flood is one row; open to all but small, rate-limited per client, CSRF-exempt,
and a 400 with a reason for anything that is not a report; the policy names it by default, and the operations page
lists what came in."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from workbench import csp_reports
from workbench.csp import HEADER
from workbench.models import CspViolation

pytestmark = pytest.mark.django_db

URL = "/csp-report/"


def _address() -> str:
    """A client address of this test's own: the rate is counted per address in the shared Redis."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def _legacy(**fields: str) -> bytes:
    report = {
        "document-uri": "http://testserver/review/12/?token=abc#x",
        "blocked-uri": "https://evil.example:8443/x.js?session=SECRET",
        "effective-directive": "script-src-elem",
        "violated-directive": "script-src-elem",
        "original-policy": "default-src 'self'",
        "disposition": "enforce",
        **fields,
    }
    return json.dumps({"csp-report": report}).encode()


def _reporting_api(*bodies: dict, other: bool = False) -> bytes:
    reports: list[dict] = [
        {"type": "csp-violation", "age": 10, "url": "http://testserver/videos/", "user_agent": "Chrome", "body": b}
        for b in bodies
    ]
    if other:
        reports.append({"type": "deprecation", "url": "http://testserver/", "body": {"id": "x"}})
    return json.dumps(reports).encode()


def _post(client: Client, body: bytes, content_type: str, address: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(URL, body, content_type=content_type, REMOTE_ADDR=address, **extra)


def test_a_legacy_report_is_kept_trimmed_and_repeats_fold_into_one_row_per_day() -> None:
    client, address = Client(enforce_csrf_checks=True), _address()  # a browser's report carries no CSRF token

    for _ in range(3):
        response = _post(client, _legacy(), "application/csp-report", address)
        assert response.status_code == 204, response.content
    _post(client, _legacy(**{"blocked-uri": "inline", "effective-directive": ""}), "application/csp-report", address)

    rows = {v.blocked: v for v in CspViolation.objects.all()}
    assert set(rows) == {"https://evil.example:8443/x.js", "inline"}  # the query (a session, a token) is not kept
    row = rows["https://evil.example:8443/x.js"]
    assert (row.directive, row.document_path, row.disposition, row.count) == (
        "script-src-elem",
        "/review/12/",
        "enforce",
        3,
    )
    # No effective-directive (an older browser): the violated one's first word.
    assert rows["inline"].directive == "script-src-elem" and rows["inline"].count == 1


def test_a_reporting_api_batch_is_kept_and_other_kinds_of_report_are_ignored() -> None:
    body = {
        "documentURL": "http://testserver/videos/?q=1",
        "blockedURL": "data",
        "effectiveDirective": "img-src",
        "disposition": "report",
    }
    scheme = {**body, "blockedURL": "blob:http://testserver/0b1c", "effectiveDirective": "media-src"}
    response = _post(Client(), _reporting_api(body, body, scheme, other=True), "application/reports+json", _address())

    assert response.status_code == 204, response.content
    rows = sorted(CspViolation.objects.values_list("directive", "blocked", "document_path", "disposition", "count"))
    assert rows == [("img-src", "data", "/videos/", "report", 2), ("media-src", "blob", "/videos/", "report", 1)]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"{not json", "application/csp-report", "not JSON"),
        (b"\xff\xfe", "application/csp-report", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/csp-report", "not JSON"),
        (b'{"csp-report": "x"}', "application/csp-report", "csp-report"),
        (b"[1, 2]", "application/csp-report", "csp-report"),
        (b'{"csp-report": {"effective-directive": "<script>"}}', "application/csp-report", "no directive"),
        (b'{"csp-report": {"blocked-uri": "x"}}', "application/csp-report", "no directive"),
        (b'{"a": 1}', "application/reports+json", "list of reports"),
        (b'["x"]', "application/reports+json", "not an object"),
        (b'[{"type": "csp-violation", "body": 3}]', "application/reports+json", "no body object"),
        (json.dumps([{"type": "deprecation"}] * 51).encode(), "application/reports+json", "At most 50"),
        (b"a=1", "application/x-www-form-urlencoded", "Send a report as application/csp-report"),
        (b"", "text/plain", "Send a report as"),
    ],
)
def test_anything_that_is_not_a_report_is_a_400_with_a_short_reason(
    body: bytes, content_type: str, reason: str
) -> None:
    response = _post(Client(), body, content_type, _address())

    assert response.status_code == 400, (response.status_code, response.content[:200])
    assert reason in response.content.decode() and len(response.content) < 200
    assert not CspViolation.objects.exists()


def test_nul_and_bidi_characters_are_stored_as_text_a_screen_can_show() -> None:
    nul = _legacy(**{"blocked-uri": "https://x.example/a\u0000b\u202e.js", "document-uri": "/p\u0000"})
    assert _post(Client(), nul, "application/csp-report", _address()).status_code == 204
    row = CspViolation.objects.get()
    assert "\x00" not in row.blocked + row.document_path and "\u202e" not in row.blocked


def test_a_body_over_the_limit_is_refused_from_its_declared_length_before_it_is_read() -> None:
    client, address = Client(), _address()
    big = _legacy(**{"original-policy": "x" * csp_reports.CSP_REPORT_MAX_BYTES})
    response = _post(client, big, "application/csp-report", address)
    assert response.status_code == 413 and b"at most" in response.content
    # Declared larger than the limit, whatever follows: refused on the header alone.
    response = _post(client, _legacy(), "application/csp-report", address, CONTENT_LENGTH=str(10**9))
    assert response.status_code == 413
    # Nor does a form's body get read (the NUL check parses forms before any view): refused before it.
    form = client.post(URL, {"f": "x" * csp_reports.CSP_REPORT_MAX_BYTES}, REMOTE_ADDR=address)
    assert form.status_code == 413
    assert not CspViolation.objects.exists()


def test_each_client_address_has_its_own_report_rate(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CSP_REPORT_RATE_LIMIT = "3/min"
    client, flooder, other = Client(), _address(), _address()
    answers = [_post(client, _legacy(), "application/csp-report", flooder).status_code for _ in range(5)]

    assert answers == [204, 204, 204, 429, 429]
    refused = _post(client, _legacy(), "application/csp-report", flooder)
    assert int(refused["Retry-After"]) >= 1 and b"Too many reports" in refused.content
    assert _post(client, _legacy(), "application/csp-report", other).status_code == 204
    assert CspViolation.objects.get().count == 4


def test_past_the_days_row_limit_new_kinds_fold_into_one_row_per_directive(monkeypatch) -> None:
    monkeypatch.setattr(csp_reports, "CSP_VIOLATION_ROWS_PER_DAY", 3)
    client = Client()
    for n in range(10):
        body = _legacy(**{"blocked-uri": f"https://x{n}.example/a.js"})
        assert _post(client, body, "application/csp-report", _address()).status_code == 204
    # A kind already kept still counts on its own row.
    _post(client, _legacy(**{"blocked-uri": "https://x0.example/a.js"}), "application/csp-report", _address())

    rows = dict(CspViolation.objects.values_list("blocked", "count"))
    assert rows == {
        "https://x0.example/a.js": 2,
        "https://x1.example/a.js": 1,
        "https://x2.example/a.js": 1,
        csp_reports.OVERFLOW_BLOCKED: 7,
    }


def test_only_post_is_taken() -> None:
    opened = Client().get(URL)  # a GET stores nothing: it is sent home (workbench/form_routes.py)
    assert opened.status_code == 303 and opened["Location"] == "/"
    assert Client().put(URL).status_code == 405


def test_the_policy_names_the_collector_by_default_another_address_when_set_and_none_when_off(settings) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/login/")
    assert "; report-uri /csp-report/; report-to csp-endpoint" in response[HEADER]
    assert response["Reporting-Endpoints"] == 'csp-endpoint="http://testserver/csp-report/"'

    settings.CSP_REPORT_URI = "https://reports.example/csp"
    response = Client().get("/login/")
    assert "report-uri https://reports.example/csp;" in response[HEADER]
    assert response["Reporting-Endpoints"] == 'csp-endpoint="https://reports.example/csp"'

    settings.CSP_REPORTING = False
    response = Client().get("/login/")
    assert "report-" not in response[HEADER] and "Reporting-Endpoints" not in response


def test_the_operations_page_lists_the_recent_reports_to_admins(client_as) -> None:
    hostile = _legacy(**{"blocked-uri": "https://x.example/<b>bold</b>.js"})
    assert _post(Client(), hostile, "application/csp-report", _address()).status_code == 204

    html = client_as("admin").get("/ops/").content.decode()
    panel = html.split('id="ops-csp"')[1].split("</section>")[0]
    assert 'data-csp-directive="script-src-elem"' in panel and "/review/12/" in panel
    assert "&lt;b&gt;bold&lt;/b&gt;" in panel and "<b>bold" not in panel  # a browser's text, shown escaped
    assert client_as("moderator").get("/ops/").status_code == 403


def test_days_older_than_the_retention_are_deleted_by_a_daily_beat_task(settings) -> None:  # type: ignore[no-untyped-def]
    """Rows were never deleted: one per day per kind of violation stayed for good."""
    from datetime import timedelta

    from celery import Celery
    from django.utils import timezone

    from workbench.queues import TASK_ROUTES, TaskQueue, configure_routing
    from workbench.tasks import purge_csp_violations

    settings.CSP_REPORT_RETENTION_DAYS = 3
    today = timezone.localdate()
    for age in (0, 2, 3, 40):
        CspViolation.objects.create(
            day=today - timedelta(days=age), directive="img-src", blocked="inline", document_path=f"/{age}/"
        )

    assert purge_csp_violations.run() == 2
    assert sorted(CspViolation.objects.values_list("document_path", flat=True)) == ["/0/", "/2/"]
    assert purge_csp_violations.run() == 0  # idempotent

    name = "workbench.tasks.purge_csp_violations"
    assert TASK_ROUTES[name] is TaskQueue.DEFAULT
    app = Celery("routing-check", set_as_current=False)  # never the app shared tasks send through
    configure_routing(app)
    assert [e["schedule"] for e in app.conf.beat_schedule.values() if e["task"] == name] == [86400.0]
