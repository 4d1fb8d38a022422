"""What the hui22 role walk found on the review screen's keyframe strip, seen in Chromium (screenshots in
/work/shots/<worktree>/)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

# Which keyframes are wholly inside the strip's visible width (1-based), what the paging line says, and what a click
# at the middle of the "›" button would land on.
_SEEN = """() => {
  const strip = document.querySelector('#player .strip');
  const left = strip.getBoundingClientRect().left + strip.clientLeft, right = left + strip.clientWidth;
  const whole = [...strip.querySelectorAll('button[data-seek]')]
    .map((f, i) => [f.getBoundingClientRect(), i + 1])
    .filter(([r]) => r.left >= left - 1 && r.right <= right + 1).map(([, n]) => n);
  const later = document.querySelector('[data-strip-step="1"]').getBoundingClientRect();
  const hit = document.elementFromPoint(later.left + later.width / 2, later.top + later.height / 2);
  return { whole, range: document.querySelector('[data-strip-range]').textContent,
           laterHit: hit ? (hit.closest('[data-strip-step]') ? 'later' : (hit.id || hit.className || hit.tagName)) : null };
}"""


def _portrait_clip() -> bytes:
    """A one-second 9:16 clip, as most short videos are: the player is as high as the review screen lets it be."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "color=c=gray:size=90x160:rate=5", "-t", "1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "frag_keyframe+empty_moov",
         "-f", "mp4", "pipe:1"],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    return out.stdout


def _jpeg(shade: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 90), (shade, 110, 190)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_review_strip_counts_whole_keyframes_and_its_paging_stays_clear_of_the_form_at_1024(
    page, make_user, policy_version
):  # type: ignore[no-untyped-def]
    """Walked at 1024x768 with a portrait video and 24 keyframes: the decision form stood where the strip's ‹ › were
    (the player, 38vh high, pushed them below the media column's edge), and "keyframes 1–6 of 24" counted a sixth
    keyframe cut off at the strip's edge. Now the player gives up height so ‹ › stay clickable, the line names only
    the keyframes wholly in view, and › pages on until each of the 24 has been wholly in view."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from moderation.media.models import Keyframe
    from moderation.review.services import review_claim_next, review_queue_default
    from tests.factories import ReviewTaskFactory

    review_queue_default()
    task = ReviewTaskFactory(decision__policy_version=policy_version)
    video = task.decision.video
    video.file = default_storage.save(f"videos/{video.pk}/portrait.mp4", ContentFile(_portrait_clip()))
    video.save(update_fields=["file"])
    Keyframe.objects.bulk_create(
        Keyframe(
            video=video,
            index=i,
            timestamp=i * 0.5,
            width=160,
            height=90,
            image=default_storage.save(f"keyframes/{video.pk}/{i:06d}.jpg", ContentFile(_jpeg(i * 10))),
        )  # fmt: skip
        for i in range(24)
    )
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator, queue=task.queue) == task
    sign_in(page, moderator.username)
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(reverse("moderation:review_task", args=[task.pk]))
    page.locator("[data-strip-more]").wait_for()
    page.wait_for_function("() => document.querySelector('#player video').readyState >= 1")  # its 9:16 size known
    page.screenshot(path=str(shots_dir() / "after-review-strip-paging-1024x768.png"))

    seen = page.evaluate(_SEEN)
    assert seen["laterHit"] == "later", seen  # it was the decision form (#verdict)
    shown: set[int] = set()
    for _ in range(12):
        whole = seen["whole"]
        assert whole and seen["range"] == f"keyframes {whole[0]}–{whole[-1]} of 24", seen
        shown.update(whole)
        later = page.locator('[data-strip-step="1"]')
        if later.get_attribute("aria-disabled") == "true":
            break
        later.click()
        seen = page.evaluate(_SEEN)
    assert shown == set(range(1, 25)), sorted(set(range(1, 25)) - shown)
    page.locator('[data-strip-step="-1"]').click()
    seen = page.evaluate(_SEEN)
    whole = seen["whole"]
    assert seen["range"] == f"keyframes {whole[0]}–{whole[-1]} of 24" and whole[-1] < 24, seen
