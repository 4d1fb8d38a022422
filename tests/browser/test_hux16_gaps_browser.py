"""Four gaps of the last role walks, in Chromium at 1440x900 (screenshots in /work/shots/<worktree>/): the queue list
while videos are still processing, restoring tags added by search after an expired session and naming them on the
stale-form page, and the review screen's tags panel drawn with the page instead of loaded after it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import PASSWORD, shots_dir, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _shot(name: str) -> str:
    return str(shots_dir() / f"{name}-{os.environ.get('SHOT_PHASE', 'after')}.png")


@pytest.mark.django_db(transaction=True)
def test_the_queue_list_counts_videos_still_processing_and_shows_the_item_once_routed(page, make_user, policy_version):
    """Right after run.sh or an upload the list said "Nothing is waiting" while videos were in the pipeline: it now
    says how many, polls every 5 s, and shows the item as soon as the video is decided and routed."""
    from moderation.media.models import Video
    from moderation.review.services import review_queue_default
    from tests.factories import ReviewTaskFactory, VideoFactory

    review_queue_default()  # a transactional test before this one may have flushed the migration's default queue
    video = VideoFactory(title="Still in the pipeline", status=Video.Status.PROCESSING, stage=Video.Stage.ASR)
    VideoFactory(title="Waiting for the model", status=Video.Status.READY, stage=Video.Stage.INFERENCE)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    note = page.locator("#queue-pipeline")
    assert "2 videos are still being processed" in note.inner_text()
    assert "Nothing is waiting in your queues yet." in page.locator("#queue-stats").inner_text()
    page.screenshot(path=_shot("queue-processing"))

    # The model decides one: its item is routed to the default queue, the other is still processing.
    Video.objects.filter(pk=video.pk).update(status=Video.Status.READY, stage=Video.Stage.DONE)
    ReviewTaskFactory(decision__video=video, decision__policy_version=policy_version)
    started = time.monotonic()
    page.wait_for_function(
        "() => document.querySelector('#queue-pipeline')?.dataset.processing === '1'"
        " && document.querySelector('[data-queue=default] [data-stat=pending]')?.textContent.trim() === '1'",
        timeout=12_000,
    )
    print(f"item shown {time.monotonic() - started:.1f} s after it was routed (poll every 5 s)")
    assert "Nothing is waiting" not in page.locator("#queue-stats").inner_text()
    page.screenshot(path=_shot("queue-routed"))


def _tag_task(policy_version):  # type: ignore[no-untyped-def]
    from tests.factories import TagFactory, TagTaskFactory

    task = TagTaskFactory(
        decision__policy_version=policy_version, suggestions=[(f"候选{i}", 0.3 - i / 100) for i in range(3)]
    )
    from moderation.tagging import text

    found = "搜索到的标签"  # suggested nowhere: found by search only
    TagFactory(name=found, search_grams=text.search_grams([found]), search_text=text.normalise(found))
    return task


def _tick_and_search(page, task_url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(task_url)
    boxes = page.locator('#tag-chips input[name="tag"]')
    boxes.nth(1).check()
    search = page.locator("[data-tag-search]")
    search.fill("搜索")
    page.wait_for_selector("[data-tag-results] [data-add-tag]")
    search.press("Enter")
    added = page.locator("#tag-chips [data-chip]", has=page.locator(".chip-name", has_text="搜索到的标签"))
    assert added.locator("input[name=tag]").is_checked()


@pytest.mark.django_db(transaction=True)
def test_a_tag_added_by_search_comes_back_with_the_ticks_after_the_session_expired(page, make_user, policy_version):
    """The ticked chips came back after signing in again (data-keep-unsent); a tag added by search did not: the page
    drawn again has no chip for it. It is drawn again now, ticked, and the submit records it."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import VideoTag
    from moderation.tagging.services import tag_set_default

    task = _tag_task(policy_version)
    tagger = make_user("moderator")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    sign_in(page, tagger.username, screen=True)
    task_url = reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}"
    _tick_and_search(page, task_url)
    page.screenshot(path=_shot("tags-added-by-search"))

    page.context.clear_cookies(name="sessionid")  # the session ends while the page is open
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()
    assert not VideoTag.objects.filter(video=task.decision.video).exists()
    if "/login/" not in page.url:
        page.goto("/login/")
    page.fill("input[name=username]", tagger.username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.goto(task_url)
    page.locator("[data-unsent-notice]").wait_for()
    restored = page.locator("#tag-chips [data-chip]", has=page.locator(".chip-name", has_text="搜索到的标签"))
    assert restored.count() == 1 and restored.locator("input[name=tag]").is_checked()
    assert "added" in restored.inner_text()
    boxes = page.locator('#tag-chips input[name="tag"]')
    assert [boxes.nth(i).is_checked() for i in range(3)] == [False, True, False]
    page.screenshot(path=_shot("tags-search-restored"))
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()
    names = sorted(VideoTag.objects.filter(video=task.decision.video).values_list("tag__name", flat=True))
    assert names == ["候选1", "搜索到的标签"]


@pytest.mark.django_db(transaction=True)
def test_the_stale_form_page_names_the_tags_ticked_and_added(page, make_user, policy_version):
    """A tag form refused as out of date (its CSRF token no longer matches) listed only "set" and "q": the tags, sent
    as ids, were skipped as numbers. It names them now, the one added by search said so."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.services import tag_set_default

    task = _tag_task(policy_version)
    tagger = make_user("moderator")
    assert review_claim_next(user=tagger, queue=task.queue) == task
    sign_in(page, tagger.username, screen=True)
    _tick_and_search(page, reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}")

    page.context.clear_cookies(name="csrftoken")  # the browser's token is gone: the form is refused as stale
    with page.expect_navigation():
        page.get_by_role("button", name="Submit tags and next").click()
    assert "Not saved: this page was out of date" in page.content()
    chosen = page.locator('[data-chosen="tag"]').inner_text()
    page.screenshot(path=_shot("tags-stale-form"), full_page=True)
    assert chosen.startswith("Tags you had ticked or added:")
    assert "候选1" in chosen and "搜索到的标签 (added by search)" in chosen
    assert "候选0" not in chosen and "候选2" not in chosen  # shown but not ticked
    assert "_choice_name" not in page.content()


_FILLED = """
window.__tagsFilled = null;
new MutationObserver(() => {
  if (window.__tagsFilled === null && document.querySelector('#tags [data-tags-form]')) {
    window.__tagsFilled = performance.now();
  }
}).observe(document, { subtree: true, childList: true });
window.__shift = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
}).observe({ type: 'layout-shift', buffered: true });
"""


@pytest.mark.django_db(transaction=True)
def test_the_review_screens_tags_panel_is_drawn_with_the_page(page, make_user, policy_version):
    """The tags panel was an empty box filled by a second request after the page loaded (hx-trigger="load"): a
    placeholder on every item, then the column below it jumped. It is in the page itself now: filled before
    DOMContentLoaded, with no layout shift of its own. Prints the time to the panel filled (median of 5 loads)."""
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import TagSuggestion
    from tests.browser.test_review_browser import _task
    from tests.factories import TagFactory

    task = _task(policy_version, decision__video__title="Tags panel timing")
    for i in range(6):
        TagSuggestion.objects.create(
            video=task.decision.video, tag=TagFactory(name=f"面板{i}"), score=0.9 - i / 10, sources=["embedding"],
            features={"embedding": 0.5},
        )  # fmt: skip
    user = make_user("moderator")
    assert review_claim_next(user=user) == task
    page.add_init_script(_FILLED)
    sign_in(page, user.username, screen=True)
    url = reverse("moderation:review_task", args=[task.pk])
    filled, ready, shifts = [], [], []
    for _ in range(5):
        page.goto(url)
        page.wait_for_function("() => window.__tagsFilled !== null")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        timing = page.evaluate(
            "({filled: window.__tagsFilled, ready: performance.getEntriesByType('navigation')[0]"
            ".domContentLoadedEventStart, shift: window.__shift})"
        )
        filled.append(timing["filled"])
        ready.append(timing["ready"])
        shifts.append(timing["shift"])
    page.screenshot(path=_shot("review-tags-panel"))
    median = sorted(filled)[2]
    print(
        f"tags panel filled at {median:.0f} ms (median; runs {[round(f) for f in filled]}), "
        f"DOMContentLoaded at {sorted(ready)[2]:.0f} ms, layout shift {max(shifts):.3f}"
    )
    assert all(f <= r for f, r in zip(filled, ready, strict=True)), (filled, ready)
    assert page.locator("#tags [data-chip]").count() == 6
