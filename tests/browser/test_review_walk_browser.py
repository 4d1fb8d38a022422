"""The review screen as the moderator works it in Chromium: its counts, its keys, its severity choices."""

from __future__ import annotations

import os

import pytest

from tests.browser.signin import sign_in
from tests.browser.test_review_browser import _task

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.mark.django_db(transaction=True)
def test_the_waiting_count_follows_each_decision(page, make_user, policy_version):
    """Seen in Chromium: "2 waiting" stayed after a decision (the next screen was fetched before it, and the
    count came from the queue list's cache), however many items had been claimed since."""
    tasks = [_task(policy_version, priority=10 - i, decision__video__title=f"ITEM {i}") for i in range(5)]
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")  # claims the first, and the second ahead: three wait
    page.wait_for_url(f"**/review/{tasks[0].pk}/")
    assert page.locator("[data-waiting]").inner_text() == "3 waiting"
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")
    page.keyboard.press("a")  # the second shows; the third is claimed ahead: two wait
    page.wait_for_selector(f'#review-screen[data-task="{tasks[1].pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    page.wait_for_function("() => document.querySelector('[data-waiting]').textContent === '2 waiting'")
    page.wait_for_function("() => window.reviewState().ready")
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{tasks[2].pk}"]')
    page.wait_for_function("() => document.querySelector('[data-waiting]').textContent === '1 waiting'")
    page.reload()  # a fresh screen counts now, not from the queue list's cache
    assert page.locator("[data-waiting]").inner_text() == "1 waiting"
    with page.expect_navigation():
        page.keyboard.press("n")  # skip: the fourth shows, the fifth is claimed ahead
    page.wait_for_url(f"**/review/{tasks[3].pk}/")
    # The fifth claimed ahead, the skipped third back in the queue for another reviewer: one waits.
    assert page.locator("[data-waiting]").inner_text() == "1 waiting"


@pytest.mark.django_db(transaction=True)
def test_n_takes_the_next_item_of_the_queue_the_moderator_is_in(page, make_user, policy_version):
    """Seen in Chromium: on the queue list "n" claimed a tag-review item (the tags queue "Content tags" sorts
    before "Default"), and from a held item's queue list it opened another queue's item instead of going back."""
    from moderation.review.models import ReviewQueue
    from tests.factories import TagTaskFactory

    tag_item = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="TAG ITEM")
    first = _task(policy_version, priority=5, decision__video__title="MODERATION 1")
    _task(policy_version, priority=4, decision__video__title="MODERATION 2")
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    assert "MODERATION 1" in page.locator(".review-head h1").inner_text()

    # Another moderation queue, more urgent, gets work while this item is held: "n" goes back to the held one.
    urgent = ReviewQueue.objects.create(name="Urgent", slug="urgent", priority=90)
    _task(policy_version, queue=urgent, decision__video__title="URGENT")
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    tag_item.refresh_from_db()
    assert tag_item.status == tag_item.Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_a_severity_the_label_does_not_allow_says_why_beside_the_choices(page, make_user, policy_version):
    """Seen in Chromium: severity "None" was greyed out on a violation and "0" did nothing, with no word why."""
    task = _task(policy_version, decision__label="色情低俗", decision__is_violation=True)
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    note = page.locator("#severity [data-severity-note]")
    assert note.is_visible()
    assert "None is only for the non-violative label (正向): a violation always has a severity" in note.inner_text()
    assert page.locator("input[name=severity][value=none]").is_disabled()
    page.keyboard.press("0")
    assert page.locator("input[name=severity]:checked").count() == 0
    assert "flash" in (note.get_attribute("class") or "")
    page.keyboard.press("2")
    assert page.locator("input[name=severity]:checked").get_attribute("value") == "medium"

    # Overriding with the non-violative label: None is the one choice, chosen, and the note says so.
    page.keyboard.press("o")
    page.keyboard.type("正向")
    page.keyboard.press("ArrowDown")
    assert page.locator("input[name=severity]:checked").get_attribute("value") == "none"
    assert note.inner_text() == "The non-violative label takes no severity: None is its only choice."
    assert "flash" not in (note.get_attribute("class") or "")


@pytest.mark.django_db(transaction=True)
def test_a_moderator_escalates_with_the_keyboard_and_the_senior_sees_why(
    page, browser, live_server, make_user, policy_version
):
    """Escalation walked in Chromium: "e" hands the item to the senior queue and the next item opens; the
    message saying so stays on the page (it was wiped as the tag panel loaded), Back shows the escalated item
    without a live verdict form (it offered Approve on an item no longer this queue's), and the senior
    reviewer reads who escalated it and why (the reason was only in the audit log)."""
    from moderation.review.models import AuditEvent, ReviewQueue, ReviewTask
    from moderation.review.services import review_queue_default

    senior = ReviewQueue.objects.create(name="Senior", slug="senior", routes_new_decisions=False)
    default = review_queue_default()
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    first = _task(policy_version, priority=5, decision__video__title="FIRST")
    second = _task(policy_version, priority=4, decision__video__title="SECOND")
    moderator = make_user("moderator")
    sign_in(page, moderator.username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.fill("input[name=reason][aria-label='Why escalate']", "Coded slang I cannot read")
    page.keyboard.press("Escape")  # leave the field: the keys work again
    with page.expect_navigation():
        page.keyboard.press("e")
    page.wait_for_url(f"**/review/{second.pk}/")
    page.wait_for_selector("#tags :is(form, p, ul, section, div)")  # the tag panel has loaded (htmx)
    assert f"Item #{first.pk} escalated to “Senior”." in page.locator("ul.messages").inner_text()

    first.refresh_from_db()
    handed = ReviewTask.objects.get(queue=senior, decision=first.decision)
    assert first.status == ReviewTask.Status.ESCALATED and handed.status == ReviewTask.Status.PENDING
    event = AuditEvent.objects.get(action="escalate")
    assert event.payload["reason"] == "Coded slang I cannot read" and event.actor_name == moderator.username

    page.go_back()
    page.wait_for_url(f"**/review/{first.pk}/")
    verdict = page.locator("#verdict")
    assert "This item was escalated to “Senior”; it is decided there now" in verdict.inner_text()
    assert verdict.locator("[data-verdict-form], button[data-hotkey=a], button[data-hotkey=e]").count() == 0

    # The queue list counted the senior queue (empty) when the moderator opened it a moment ago; the escalated
    # item is offered at once all the same (it said "empty" for up to 10 s).
    context = browser.new_context(base_url=live_server.url)
    senior_page = context.new_page()
    senior_page.set_default_timeout(15_000)
    sign_in(senior_page, make_user("moderator").username)
    senior_page.goto("/review/")
    with senior_page.expect_navigation():
        senior_page.locator("tr[data-queue=senior] button").click()
    assert senior_page.url.endswith(f"/review/{handed.pk}/")
    said = senior_page.locator("#escalations").inner_text()
    assert f"{moderator.username} from “Default”" in said and "Coded slang I cannot read" in said
    context.close()


@pytest.mark.django_db(transaction=True)
def test_salient_patches_say_what_they_are_and_a_keyframe_enlarges_with_its_boxes(
    page, make_user, policy_version, tmp_path
):
    """Walked in Chromium: a box's number was red on the test card's red bars, one at the picture's top edge was cut
    off, and nothing said what a box was (its tooltip never shows: the overlay lets clicks through to the picture);
    the 320 px keyframes could not be enlarged; their numbers were bare ("score 0.851", "On-screen text box · 0.99")."""
    from PIL import Image

    from moderation.media.models import Keyframe, Patch
    from moderation.review.models import Review
    from workbench import storage

    task = _task(policy_version, decision__video__title="PATCHES")
    video = task.decision.video
    Image.new("RGB", (320, 180), (220, 30, 30)).save(tmp_path / "kf.jpg", "JPEG")
    name = storage.store_file(tmp_path / "kf.jpg", f"keyframes/{video.pk}/000000.jpg")
    kf = Keyframe.objects.create(video=video, index=0, timestamp=1.0, image=name, width=320, height=180, selected=True)
    top = Patch.objects.create(
        keyframe=kf, rank=0, method="ocr", x=10, y=2, w=120, h=20, score=0.99, label="ADD ME ON WECHAT"
    )
    low = Patch.objects.create(keyframe=kf, rank=1, method="vit", x=150, y=90, w=60, h=60, score=0.5)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.locator("#selected-keyframes summary").click()

    legend = page.locator("#selected-keyframes .patch-legend li")
    assert [" ".join(t.split()) for t in legend.all_inner_texts()] == [
        f"{top.pk} On-screen text box · confidence 0.99 · “ADD ME ON WECHAT”",
        f"{low.pk} ViT patch-embedding norm · saliency 0.50",
    ]
    # The keyframe's number says what it is (it read "score 0.000", and the boxes' bare "0.99").
    assert "1.0 s · relevance 0.000" in page.locator(f"#keyframe-{kf.pk} figcaption").inner_text()
    number = page.locator(f"#patch-{top.pk} text")
    assert number.evaluate("el => getComputedStyle(el).stroke") == "rgb(255, 255, 255)"  # a halo under the red
    assert number.get_attribute("dy") == "11"  # inside the box: above it is outside the picture

    enlarge = page.locator("#selected-keyframes [data-kf-enlarge]")
    enlarge.click()
    dialog = page.locator("dialog#kf-zoom")
    assert dialog.is_visible()
    big = dialog.locator(".kf-frame img")
    assert big.evaluate("el => el.getBoundingClientRect().width") >= 960  # three times the strip's picture
    assert "blur" in big.evaluate("el => getComputedStyle(el).filter")  # shielded as the page is
    assert "ADD ME ON WECHAT" in dialog.locator(".patch-legend").inner_text()
    assert dialog.locator(f"g.patch-{top.method}").count() == 1 and page.locator(f"#patch-{top.pk}").count() == 1
    page.keyboard.press("a")  # the screen's keys do nothing behind the dialog
    page.wait_for_timeout(300)
    assert dialog.is_visible() and not Review.objects.exists()
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.matches('[data-kf-enlarge]')")

    page.keyboard.press("r")  # revealed: the enlarged copy is too
    enlarge.click()
    assert big.evaluate("el => getComputedStyle(el).filter") == "none"


@pytest.mark.django_db(transaction=True)
def test_an_override_to_a_violation_without_severity_is_refused_on_the_screen(page, make_user, policy_version):
    """Seen in a walkthrough: an override to a violation was saved with no severity. Now the item stays on the
    screen, still the reviewer's, with the reason; choosing a severity then records it. Screenshots into
    SHOTS_DIR (1440x900)."""
    from pathlib import Path

    from moderation.review.models import Review

    task = _task(policy_version, decision__video__title="NO SEVERITY")  # the model said 正向 (not a violation)
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hclaim11"))
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.wait_for_function("() => window.reviewState")

    page.keyboard.press("o")
    page.keyboard.type("private deals")
    page.keyboard.press("Enter")  # the override, with no severity chosen
    # Said beside the verdict before anything is sent (hwalk14; the server refuses it too).
    failure = page.locator(f'#review-screen[data-task="{task.pk}"] [data-review-failure]')
    failure.wait_for()
    assert "“引导私下交易” is a violation: choose its severity" in failure.inner_text()
    assert page.locator(f'#review-screen[data-task="{task.pk}"]').is_visible()
    assert not Review.objects.filter(task=task).exists()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "override-without-severity-refused.png"))

    page.locator("input[name=severity][value=high]").check()
    page.locator("button[data-override]").click()
    page.wait_for_url("**/review/")
    assert Review.objects.get(task=task).severity == "high"
    page.screenshot(path=str(shots / "override-with-severity-recorded.png"))


@pytest.mark.django_db(transaction=True)
def test_a_reviewer_whose_queue_holds_only_their_own_uploads_is_told_why_nothing_is_claimable(
    page, make_user, policy_version
):
    """Seen in a walkthrough: "Claim next" handed a moderator their own upload. Now it never does; the queue list
    says the items waiting are theirs (not "empty" beside a non-zero count). Screenshot into SHOTS_DIR."""
    from pathlib import Path

    uploader = make_user("moderator")
    for i in range(2):
        _task(policy_version, decision__video__created_by=uploader, decision__video__title=f"MINE {i}")
    shots = Path(os.environ.get("SHOTS_DIR", "/work/shots/hclaim11"))
    sign_in(page, uploader.username, screen=True)
    page.goto("/review/")

    row = page.locator('tr[data-queue="default"]')
    assert row.locator('[data-stat="pending"]').inner_text() == "2"
    assert "2 waiting are your own uploads: another reviewer takes them" in row.inner_text()
    assert row.locator("button", has_text="Claim next").is_disabled()
    assert "the items left in your queues are your own uploads" in page.locator("#queue-stats").inner_text()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "queue-only-own-uploads.png"))
    page.keyboard.press("n")  # no queue to claim from: the list stays
    assert page.url.endswith("/review/")
