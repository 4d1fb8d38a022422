"""The Content-Security-Policy of every HTML page (workbench/csp.py): what it allows, report-only mode, the object
store's origin for media, the 500 page's nonce, and templates that hold nothing the policy refuses."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import include, path

from workbench.csp import HEADER, REPORT_ONLY_HEADER

ROOT = Path(__file__).resolve().parents[2]


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def _nonce(policy: str) -> str:
    [nonce] = [s for s in _directives(policy)["script-src"] if s.startswith("'nonce-")]
    return nonce.removeprefix("'nonce-").rstrip("'")


@pytest.mark.django_db
def test_every_html_page_carries_the_strict_policy_with_a_fresh_nonce_each_time() -> None:
    client = Client()
    first, second = client.get("/login/"), client.get("/login/")
    assert first.status_code == 200 and REPORT_ONLY_HEADER not in first
    policy = _directives(first[HEADER])
    nonce = _nonce(first[HEADER])
    assert policy == {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        "style-src": ["'self'", f"'nonce-{nonce}'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        # Reports to this site's own collector by default (tests/workbench/test_csp_reports.py).
        "report-uri": ["/csp-report/"],
        "report-to": ["csp-endpoint"],
    }
    assert len(nonce) >= 22 and _nonce(second[HEADER]) != nonce
    # Framing refused both ways: old browsers read X-Frame-Options, new ones frame-ancestors.
    assert first["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_signed_in_pages_error_pages_and_htmx_fragments_carry_it_json_and_media_do_not(client_as) -> None:
    client = client_as("moderator")
    for url in ("/", "/review/", "/no-such-page/"):
        response = client.get(url)
        assert "frame-ancestors 'none'" in response[HEADER], url
    assert HEADER not in Client().get("/healthz")
    assert HEADER not in client.get("/api/decisions/")


@pytest.mark.django_db
def test_report_only_sends_the_same_policy_as_a_report(settings) -> None:
    settings.CSP_REPORT_ONLY = True
    settings.CSP_REPORT_URI = "/csp-reports/"
    response = Client().get("/login/")
    assert HEADER not in response
    policy = _directives(response[REPORT_ONLY_HEADER])
    assert policy["script-src"][0] == "'self'" and policy["report-uri"] == ["/csp-reports/"]


@pytest.mark.django_db
def test_with_object_storage_media_and_images_may_come_from_exactly_the_stores_origin(s3_media, client_as) -> None:
    client = client_as("moderator")
    redirect = client.get("/media/videos/x.mp4")
    assert redirect.status_code == 302
    store = urlsplit(redirect["Location"])
    origin = f"{store.scheme}://{store.netloc}"
    policy = _directives(client.get("/review/")[HEADER])
    assert policy["media-src"] == ["'self'", origin]
    assert policy["img-src"] == ["'self'", origin, "data:"]
    assert policy["default-src"] == ["'self'"] and policy["script-src"][0] == "'self'"


@pytest.mark.parametrize(
    ("endpoint", "public", "style", "region", "expected"),
    [
        ("", "", "path", "us-east-1", "https://s3.amazonaws.com"),
        ("", "", "virtual", "eu-west-1", "https://media-bucket.s3.eu-west-1.amazonaws.com"),
        ("http://minio:9000", "", "path", "us-east-1", "http://minio:9000"),
        ("http://minio:9000", "https://media.example.org", "path", "us-east-1", "https://media.example.org"),
        ("http://minio:9000", "https://media.example.org:8443", "virtual", "us-east-1",
         "https://media-bucket.media.example.org:8443"),
    ],
)  # fmt: skip
def test_the_media_origin_is_the_one_presigned_urls_point_at(settings, endpoint, public, style, region, expected):
    """Whatever the endpoint, the public endpoint, AWS's regional name or virtual addressing make of the host, the
    policy names the host the media view's presigned URLs use (signed here with made-up keys: no network)."""
    from django.core.files.storage import default_storage

    from workbench.storage import playback_origin

    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_S3_PUBLIC_ENDPOINT_URL = public
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "workbench.storage.MediaS3Storage",
            "OPTIONS": {
                "bucket_name": "media-bucket",
                "endpoint_url": endpoint or None,
                "region_name": region,
                "access_key": "AKIDEXAMPLE",
                "secret_key": "not-a-secret",  # noqa: S106
                "addressing_style": style,
            },
        },
    }
    presigned = urlsplit(default_storage.presigned_url("videos/2026/a.mp4"))  # type: ignore[attr-defined]
    assert playback_origin() == f"{presigned.scheme}://{presigned.netloc}" == expected


@pytest.mark.django_db
def test_settings_that_name_no_valid_bucket_still_serve_the_page_with_media_from_this_site_only(settings):
    settings.MEDIA_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "workbench.storage.MediaS3Storage", "OPTIONS": {"bucket_name": ""}},
    }
    response = Client().get("/login/")
    assert response.status_code == 200 and _directives(response[HEADER])["media-src"] == ["'self'"]


def _boom(request):  # type: ignore[no-untyped-def]
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _boom), path("", include("workbench.urls"))]
handler500 = "workbench.views.server_error"


# ROOT_URLCONF through the ``settings`` fixture, not ``@override_settings``: with both on one test the fixture's
# teardown (after the decorator's) put back the overridden settings, and later tests in the process got this module's
# URLs and Django's own 400 page.
@pytest.mark.django_db
def test_the_500_page_keeps_its_style_by_the_policys_nonce(settings) -> None:
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    nonce = _nonce(response[HEADER])
    assert f'<style nonce="{nonce}">' in response.content.decode()


@pytest.mark.django_db
def test_with_debug_on_djangos_traceback_page_keeps_its_inline_script(settings) -> None:
    """The technical 500 page (DEBUG, development only) is built on inline script and styles: the policy would
    leave it unstyled and its toggles dead, so it is served without one; ordinary pages keep it."""
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = True
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500 and "Traceback" in response.content.decode()
    assert HEADER not in response
    assert HEADER in Client().get("/login/")


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_settings_script_as_a_file(client_as) -> None:
    """drf-spectacular's page wrote Swagger UI's settings as an inline script, which the policy refuses (a blank
    page): the page loads it from ?script, JavaScript served by this site."""
    client = client_as("labeler")
    html = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


# What a strict policy refuses in markup: an inline <script> (unless JSON data or nonce'd), an on…= or hx-on handler,
# a javascript: URL, a style="" attribute, a <style> element without the nonce.
_REFUSED = {
    "inline script": re.compile(r"<script(?![^>]*\b(?:src|nonce)=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "event handler attribute": re.compile(r"\s(?:on[a-z]+|hx-on[:\w-]*)\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "style element": re.compile(r"<style(?![^>]*\bnonce=)[^>]*>", re.I),
}


_COMMENT = re.compile(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", re.S)


def test_no_template_holds_markup_the_policy_refuses() -> None:
    found = [
        f"{template.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {what}"
        for template in sorted((ROOT / "templates").rglob("*.html"))
        # Comments blanked, their lines kept: they may name what they explain.
        for text in [_COMMENT.sub(lambda c: "\n" * c.group().count("\n"), template.read_text())]
        for what, pattern in _REFUSED.items()
        for m in pattern.finditer(text)
    ]
    assert found == []


def _refused_in(html: str) -> list[str]:
    return [
        f"{what}: {html[max(0, m.start() - 60) : m.end() + 60]!r}"
        for what, p in _REFUSED.items()
        for m in p.finditer(html)
    ]


@pytest.mark.django_db
def test_the_browsable_api_holds_no_markup_the_policy_refuses(client_as) -> None:
    """DRF's browsable API wrote its code highlighting in an inline <style> on every page, and styled the detail
    pages' Extra Actions menu with a style attribute: both refused by the policy (and a violation report per page
    load). DRF's templates are not under templates/, which the scan above reads: its pages are scanned as rendered,
    the browsable list, a detail page with an extra action, the create form and the signed-out 401."""
    from django.contrib.staticfiles import finders
    from rest_framework.compat import pygments_css
    from rest_framework.renderers import BrowsableAPIRenderer

    from tests.factories import VideoFactory

    client = client_as("admin")
    video = VideoFactory()
    pages = {url: client.get(url, HTTP_ACCEPT="text/html") for url in ("/api/", "/api/decisions/", "/api/videos/")}
    pages["detail"] = client.get(f"/api/videos/{video.pk}/", HTTP_ACCEPT="text/html")
    pages["signed out"] = Client().get("/api/decisions/", HTTP_ACCEPT="text/html")
    for name, page in pages.items():
        html = page.content.decode()
        assert page["Content-Type"].startswith("text/html") and HEADER in page, name
        assert _refused_in(html) == [], name
        assert "rest_framework/css/bootstrap.min.css" in html and "api_browsable.css" in html, name
    assert "data-api-aside" in pages["detail"].content.decode()  # the Extra Actions menu, styled by the file
    assert 'id="api-signed-out"' in pages["signed out"].content.decode()
    # The highlighting moved to a file, held to what DRF would have written inline.
    assert "api_code_style.css" in pages["/api/"].content.decode()
    code_style = Path(str(finders.find("api_code_style.css"))).read_text()
    assert code_style.endswith(pygments_css(BrowsableAPIRenderer.code_style))
    assert finders.find("api_browsable.css")
