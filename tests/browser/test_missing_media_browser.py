"""A stored file deleted from the object store (s3rver): the review screen and the video page in Chromium say
which media is missing, in its place, instead of a broken player or picture, and the video is flagged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from moderation.media.models import Keyframe, Video
from moderation.review.models import AuditEvent
from moderation.review.services import review_claim_next
from tests.browser.signin import sign_in
from tests.factories import ReviewTaskFactory
from workbench import storage

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _clip(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "3",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def _jpeg(path: Path, shade: int) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 36), (shade, 80, 160)).save(path, "JPEG")
    return path


def _strip(page: Any) -> dict[str, Any]:
    """What the keyframe strip shows: placeholders, and how many pictures decoded (presigned GETs)."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('#player .strip img')].every(i => i.complete)", timeout=30_000
    )
    return page.evaluate(
        """() => ({
            missing: document.querySelectorAll('#player .strip [data-missing=keyframe]').length,
            loaded: [...document.querySelectorAll('#player .strip img')].filter(i => i.naturalWidth > 0).length,
            broken: [...document.querySelectorAll('#player .strip img')].filter(i => i.naturalWidth === 0).length,
        })"""
    )


@pytest.mark.django_db(transaction=True)
def test_a_deleted_keyframe_then_video_object_is_said_on_the_screen_and_recorded(
    s3_media: Any, settings: Any, page: Any, make_user: Any, policy_version: Any, tmp_path: Path
) -> None:
    bucket = settings.MEDIA_S3_BUCKET
    settings.MEDIA_CHECK_CACHE_S = 0  # every render asks the store (the trusted window is tested on its own)
    video_name = storage.store_file(_clip(tmp_path / "clip.mp4"), "videos/2026/12/gone-clip.mp4")
    task = ReviewTaskFactory(
        decision__policy_version=policy_version, decision__video__file=video_name, decision__video__title="GONE"
    )
    video = task.decision.video
    frames = []
    for i in range(3):
        name = storage.store_file(_jpeg(tmp_path / f"{i}.jpg", 40 * i), f"keyframes/{video.pk}/00000{i}.jpg")
        frames.append(Keyframe.objects.create(video=video, index=i, timestamp=i, image=name, width=64, height=36))
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator) == task
    sign_in(page, moderator.username, screen=True)

    # All there: a player that loads from the store, three pictures, no notice, nothing recorded.
    response = page.goto(f"/review/{task.pk}/")
    assert response.status == 200
    assert _strip(page) == {"missing": 0, "loaded": 3, "broken": 0}
    assert page.locator("#media-missing").count() == 0

    # A keyframe object deleted from the bucket: that picture is a "missing" notice, the rest still show.
    s3_media.client().delete_object(Bucket=bucket, Key=frames[1].image.name)
    assert page.goto(f"/review/{task.pk}/").status == 200
    notice = page.locator("#media-missing")
    assert notice.is_visible() and "1 of 3 keyframe images" in notice.inner_text()
    assert "video file" not in notice.inner_text()
    assert _strip(page) == {"missing": 1, "loaded": 2, "broken": 0}
    duration = page.evaluate(
        """async () => {
            const v = document.querySelector('video[data-player]');
            if (v.readyState < 1) await new Promise((ok, no) => { v.onloadedmetadata = ok; v.onerror = () => no(String(v.error && v.error.code)); });
            return v.duration;
        }"""
    )
    assert duration > 2.5, "the video itself still plays"
    video.refresh_from_db()
    assert video.missing_media == [frames[1].image.name] and video.missing_media_changed_at is not None
    [event] = AuditEvent.objects.filter(action="media.missing", object_id=str(video.pk))
    assert event.actor == moderator and event.payload["new"] == [frames[1].image.name]

    # The video object deleted too: no player, a notice naming the file; the flag and the log follow.
    s3_media.client().delete_object(Bucket=bucket, Key=video_name)
    assert page.goto(f"/review/{task.pk}/").status == 200
    assert "the video file and 1 of 3 keyframe images" in page.locator("#media-missing").inner_text()
    assert page.locator("video").count() == 0
    placeholder = page.locator("#player [data-missing=video]")
    assert placeholder.is_visible() and video_name in placeholder.inner_text()
    page.screenshot(path=str(Path(os.environ.get("SCREENSHOT_DIR", tmp_path)) / "review-missing.png"))
    video.refresh_from_db()
    assert video.missing_media == sorted([video_name, frames[1].image.name])
    assert AuditEvent.objects.filter(action="media.missing", object_id=str(video.pk)).count() == 2
    assert Video.objects.get(pk=video.pk).status == Video.Status.READY, "the decision and review stay possible"

    # The video page says the same.
    assert page.goto(f"/videos/{video.pk}/").status == 200
    assert "the video file and 1 of 3 keyframe images" in page.locator("#media-missing").inner_text()
    assert page.locator("video").count() == 0 and page.locator("[data-missing=keyframe]").count() == 1
