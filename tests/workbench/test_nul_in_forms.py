"""A NUL character in a form field (text pasted from a broken source; PostgreSQL's text cannot hold it) replaced the
page with a plain-text 400. The workbench's forms say it on the field and give the page back as typed (an htmx
partial too); other form posts from a browser get a page naming the field. Browsers do not send it at all: the page
script says it on the field first (tests/browser/test_review_browser.py)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from moderation.media.models import Video
from workbench.forms import NUL_FIELD_ERROR

pytestmark = pytest.mark.django_db


def _said(html: str) -> bool:
    return NUL_FIELD_ERROR.split(" (")[0] in html and NUL_FIELD_ERROR.split("; ")[1] in html


def test_the_upload_form_says_it_on_the_title_and_keeps_the_form(client_as) -> None:  # type: ignore[no-untyped-def]
    clip = SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"z" * 512)
    response = client_as("moderator").post(
        reverse("moderation:video_upload"), {"title": "holiday\x00 clip", "file": clip}
    )
    html = response.content.decode()
    assert response.status_code == 400 and "<h1>" in html  # the video list again, not a plain-text answer
    title = html[html.index('name="title"') - 200 : html.index('name="title"') + 600]
    assert _said(title) and "holiday" in title  # on the field, beside what was typed
    assert not Video.objects.exists()


def test_the_tag_events_export_form_says_it_on_its_field(client_as) -> None:  # type: ignore[no-untyped-def]
    params = {"events-tag_set": "food\x00", "events-file_format": "jsonl"}
    response = client_as("admin").get(reverse("training:tag_events_download"), params)
    html = response.content.decode()
    assert response.status_code == 400 and "<h1>" in html and _said(html)
    assert "does not exist (any more)" not in html  # its own reason is replaced by the one that applies


def test_the_export_forms_htmx_preview_says_it_on_the_field(client_as) -> None:  # type: ignore[no-untyped-def]
    params = {"what": "tags", "tags-which": "reviewed", "tags-base_url": "http://wb\x00/"}
    response = client_as("labeler").get("/annotation/labelstudio/", params, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<h1>" not in html  # the partial, swapped in with the reason
    assert "Media address: This contains a NUL character" in html


def test_another_form_post_from_a_browser_gets_a_page_naming_the_field(client_as) -> None:  # type: ignore[no-untyped-def]
    client = client_as("policy_editor")
    url = reverse("moderation:tag_import")
    page = client.post(url, {"lines": "猫\x00"}, HTTP_ACCEPT="text/html,application/xhtml+xml")
    html = page.content.decode()
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
    assert "<h1>Not saved: a NUL character" in html and "“lines”" in html and "NUL characters" in html
    htmx = client.post(url, {"lines": "猫\x00"}, HTTP_HX_REQUEST="true")  # htmx shows the sentence above the page
    assert htmx.status_code == 400 and htmx.content.decode().endswith("(in “lines”)")
