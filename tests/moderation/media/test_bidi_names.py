"""A title or file name holding invisible bidi controls displayed as something it is not ("invoice\\u202egpj.mp4"
reads "invoicemp4.jpg"): names are stored without them, so every screen, export and API answer shows the honest
text."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from moderation.media.models import Video
from tests.factories import VideoFactory
from workbench.text import shown_name

pytestmark = pytest.mark.django_db

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_shown_name_drops_every_bidi_control_and_keeps_the_rest() -> None:
    assert shown_name(f"a{CONTROLS}b") == "ab"
    # Right-to-left scripts, CJK and emoji joined with ZWJ are text, not controls.
    assert shown_name("שלום 视频 👩\u200d💻") == "שלום 视频 👩\u200d💻"


def test_an_uploaded_name_and_title_with_bidi_overrides_are_stored_and_shown_without_them(client_as) -> None:  # type: ignore[no-untyped-def]
    clip = SimpleUploadedFile("invoice\u202egpj.mp4", b"\x00\x00\x00\x18ftypmp42" + b"z" * 512)
    client = client_as("moderator")
    client.post(reverse("moderation:video_upload"), {"title": "Refund \u2067policy\u2069\u200f", "file": clip})

    video = Video.objects.get()
    assert (video.title, video.original_filename) == ("Refund policy", "invoicegpj.mp4")
    page = client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    assert "Refund policy" in page and not any(c in page for c in CONTROLS)


def test_a_name_of_only_controls_falls_back_to_the_file_name(client_as) -> None:  # type: ignore[no-untyped-def]
    clip = SimpleUploadedFile("holiday.mp4", b"\x00\x00\x00\x18ftypmp42" + b"y" * 512)
    client_as("moderator").post(reverse("moderation:video_upload"), {"title": "\u202e\u202e", "file": clip})
    assert Video.objects.get().title == "holiday"


def test_names_stored_before_lose_their_bidi_controls_once() -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("moderation.migrations.0055_video_names_without_bidi_controls")
    old = VideoFactory(title="Cheap \u202ephones", original_filename="a\u2066b\u2069.mp4", file="")
    plain = VideoFactory(title="שלום", file="")
    migration.strip_bidi_controls(apps, None)
    old.refresh_from_db()
    assert (old.title, old.original_filename) == ("Cheap phones", "ab.mp4")
    assert Video.objects.get(pk=plain.pk).title == "שלום"


def test_a_description_sent_with_bidi_controls_is_stored_without_them(tmp_path) -> None:
    """Titles and file names lost their bidi controls; a description (the API's and a manifest's field) kept them,
    and reviewers read it beside the title."""
    from moderation.media.ingest import video_ingest

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"d" * 512)
    video = video_ingest(path=clip, title="Deal", description=f"Call \u202e0011 2233\u202c now{CONTROLS}")
    assert Video.objects.get(pk=video.pk).description == "Call 0011 2233 now"


def test_a_tag_name_or_alias_with_a_bidi_control_is_refused_with_the_reason() -> None:
    """Tag names are shown on every chip and in every export: one holding a bidi control (an import line, an
    editor's rename) displayed as another word. Refused on its line, as a control character is."""
    from moderation.tagging.models import Tag
    from moderation.tagging.services import tags_import

    report = tags_import(lines=["cat\u202e", "dog\tpup\u2067py\u2069", "bird\tsparrow"])
    assert [e.split(":")[0] for e in report.errors] == ["line 1", "line 2"]
    assert all("invisible bidi control" in e for e in report.errors), report.errors
    assert list(Tag.objects.values_list("name", flat=True)) == ["bird"]
