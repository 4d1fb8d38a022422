"""What users tripped over on the screens, checked in Chromium at 1440x900 (found by working each role's screens)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_patch_boxes_sit_on_their_keyframe_even_under_a_long_caption(page, make_user):
    """The selected keyframes' patch overlay used to span the figure, which a long OCR caption makes wider
    than the picture: the boxes were stretched sideways off the text they mark."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from moderation.media.models import Keyframe, Patch
    from tests.factories import VideoFactory

    moderator = make_user("moderator")  # its uploader: a video not decided (routed) yet is theirs to open
    video = VideoFactory(file="", created_by=moderator)
    name = default_storage.save(f"keyframes/{video.pk}/000000.jpg", ContentFile(_jpeg(320, 180)))
    kf = Keyframe.objects.create(
        video=video, index=0, timestamp=0.0, image=name, selected=True, width=320, height=180,
        ocr_text="Add me on WeChat for a private deal, message me privately outside the app " * 2,
    )  # fmt: skip
    patch = Patch.objects.create(keyframe=kf, rank=0, method=Patch.Method.OCR, x=160, y=90, w=80, h=40, score=0.9)
    sign_in(page, moderator.username, screen=True)
    page.goto(reverse("moderation:video_detail", args=[video.pk]))
    picture = page.locator(f"#keyframe-{kf.pk} img")
    picture.wait_for()
    page.wait_for_function(f"() => document.querySelector('#keyframe-{kf.pk} img').complete")
    img = picture.bounding_box()
    box = page.locator(f"#patch-{patch.pk} rect").bounding_box()
    assert img is not None and box is not None
    caption = page.locator(f"#keyframe-{kf.pk} figcaption").bounding_box()
    assert caption is not None and caption["width"] > img["width"]  # the case that went wrong
    scale = img["width"] / 320
    # The box is where its keyframe pixels are (stroke width aside), not stretched by the caption.
    assert abs(box["x"] - (img["x"] + 160 * scale)) < 3
    assert abs(box["width"] - 80 * scale) < 4
    # A stored file the browser cannot decode (the factory's bytes are not a video): the note beside the
    # player said "the file may be missing from media storage", which the server checks and says itself.
    unplayable = VideoFactory(created_by=moderator)
    page.goto(reverse("moderation:video_detail", args=[unplayable.pk]))
    note = page.locator("[data-player-error]")
    note.wait_for()
    assert "could not play this video" in note.inner_text() and "missing" not in note.inner_text()
    assert "fps" not in page.locator("h2", has_text="Keyframes").inner_text()  # the source fps is unknown: not "?"
