"""What the role walk left open, looked at in Chromium at 1440x900 (screenshots in /work/shots/<worktree>/): the
correction screen's keyframe strip hid the keyframes past its width, and a table caption stood centred."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _jpeg(shade: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 90), (shade, 110, 190)).save(out, "JPEG")
    return out.getvalue()


def _in_view(page, frame: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether keyframe ``frame`` (a selector) is wholly inside the strip's visible width."""
    return bool(
        page.evaluate(
            """(sel) => { const f = document.querySelector(sel).getBoundingClientRect();
                const s = document.querySelector('.strip').getBoundingClientRect();
                return f.left >= s.left - 1 && f.right <= s.right + 1; }""",
            frame,
        )
    )


@pytest.mark.django_db(transaction=True)
def test_keyframes_past_the_strips_width_are_said_and_reached_by_mouse_and_keyboard(page, make_user, policy_version):
    """Walked as a labeler: 24 keyframes, five in the correction screen's strip and no scrollbar drawn: nothing said
    there were more. The strip says which are in view out of how many, ‹ › page through them, and ← → on a keyframe
    moves to the next one, scrolled into view."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from moderation.media.models import Keyframe
    from tests.factories import DecisionFactory, VideoFactory

    video = VideoFactory(file="")
    frames = [
        Keyframe.objects.create(
            video=video,
            index=i,
            timestamp=i * 0.5,
            width=160,
            height=90,
            selected=i % 6 == 0,
            image=default_storage.save(f"keyframes/{video.pk}/{i:06d}.jpg", ContentFile(_jpeg(i * 10))),
        )  # fmt: skip
        for i in range(24)
    ]
    decision = DecisionFactory(video=video, policy_version=policy_version)
    sign_in(page, make_user("labeler").username, screen=True)
    page.goto(reverse("annotation:correction_edit", args=[decision.pk]))

    more = page.locator("[data-strip-more]")
    more.wait_for()
    assert more.is_visible()
    assert page.evaluate("() => getComputedStyle(document.querySelector('.strip')).scrollbarWidth") == "thin"
    first_range = more.locator("[data-strip-range]").inner_text()
    assert first_range.startswith("keyframes 1–") and first_range.endswith(" of 24"), first_range
    last = f"#frame-{frames[-1].pk}"
    assert not _in_view(page, last)
    page.locator("#player").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "after-correction-strip.png"))

    # The mouse: "›" pages on until the last keyframe is in view; "‹" goes back.
    later = more.get_by_role("button", name="›")
    assert later.get_attribute("title") == "Later keyframes"
    for _ in range(10):
        if _in_view(page, last):
            break
        later.click()
    assert _in_view(page, last)
    assert more.locator("[data-strip-range]").inner_text().endswith("–24 of 24")
    assert later.get_attribute("aria-disabled") == "true"
    page.screenshot(path=str(shots_dir() / "after-correction-strip-end.png"))
    more.get_by_role("button", name="‹").click()
    assert not _in_view(page, last)

    # The keyboard: from the first keyframe, → walks to the last, each one scrolled into view.
    page.locator(f"#frame-{frames[0].pk}").focus()
    page.evaluate("() => { document.querySelector('.strip').scrollLeft = 0; }")
    for _ in range(23):
        page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.id") == f"frame-{frames[-1].pk}"
    assert _in_view(page, last)
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("() => document.activeElement.id") == f"frame-{frames[-2].pk}"


@pytest.mark.django_db(transaction=True)
def test_table_captions_start_at_the_left_like_the_apps_other_captions(page, make_user):
    """Walked as the admin: the operations page's "What runs where" caption was centred in its panel, above columns
    that start at the left, where the app's other captions (the pair queue's key, the charts') start at the left."""
    admin = make_user("admin")
    admin.is_staff = True
    admin.save()
    sign_in(page, admin.username, screen=True)
    page.goto(reverse("moderation:ops_dashboard"))
    caption = page.locator("caption", has_text="What runs where")
    caption.wait_for()
    assert caption.evaluate("(c) => getComputedStyle(c).textAlign") == "left"
    header = caption.locator("xpath=..").locator("th").first.bounding_box()
    # The caption's words start where the first column's do, not in the middle of the panel.
    start = caption.evaluate(
        "(c) => { const r = document.createRange(); r.selectNodeContents(c); return r.getClientRects()[0].left; }"
    )
    assert header is not None and abs(start - (header["x"] + 8)) < 4, (start, header)
    caption.scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "after-ops-caption-left.png"))


@pytest.mark.django_db(transaction=True)
def test_the_review_and_tag_screens_controls_line_up_with_what_they_belong_to(page, make_user, policy_version):
    """Walked at 1440x900: on the review screen Override stood 5 px below the foot of the note it sends; on the tag
    screen each chip's box stood above the middle of the tag's name and key beside it."""
    from moderation.review.services import review_claim_next, review_queue_default
    from moderation.tagging.services import tag_set_default
    from tests.browser.test_hux16_gaps_browser import _tag_task
    from tests.factories import ReviewTaskFactory

    review_queue_default()
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator, queue=task.queue) == task
    sign_in(page, moderator.username, screen=True)
    page.goto(reverse("moderation:review_task", args=[task.pk]))
    note = page.locator(".note-row textarea").bounding_box()
    override = page.locator("button[data-override]").bounding_box()
    assert note is not None and override is not None
    assert abs((note["y"] + note["height"]) - (override["y"] + override["height"])) <= 1, (note, override)
    page.screenshot(path=str(shots_dir() / "after-review-screen.png"))

    tags = _tag_task(policy_version)
    assert review_claim_next(user=moderator, queue=tags.queue) == tags
    page.goto(reverse("moderation:tag_task", args=[tags.pk]) + f"?set={tag_set_default().slug}")
    chip = page.locator("#tag-chips [data-chip]").first
    box = chip.locator("input[name=tag]").bounding_box()
    name = chip.locator(".chip-name").bounding_box()
    assert box is not None and name is not None
    keycap = chip.locator("kbd").bounding_box()
    assert keycap is not None
    # Measured at 1440x900: the box's middle was 1.5 px above the name's and 2.5 px above its key's; 0.2 and 1.2 now.
    assert abs((box["y"] + box["height"] / 2) - (name["y"] + name["height"] / 2)) <= 0.75, (box, name)
    assert abs((box["y"] + box["height"] / 2) - (keycap["y"] + keycap["height"] / 2)) <= 1.5, (box, keycap)
    page.screenshot(path=str(shots_dir() / "after-tag-screen.png"))
