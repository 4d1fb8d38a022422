"""The review workbench in a real headless Chromium (Playwright) against a live server."""

from __future__ import annotations

import os

import pytest

from moderation.review.models import Review, ReviewTask
from tests.browser.signin import sign_in
from tests.factories import ReviewTaskFactory

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _task(policy_version, **kwargs) -> ReviewTask:  # type: ignore[no-untyped-def]
    kwargs.setdefault("decision__policy_version", policy_version)
    kwargs.setdefault("decision__video__file", "")
    return ReviewTaskFactory(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_moderator_claims_and_reviews_with_the_keyboard_only(page, make_user, policy_version):
    first = _task(policy_version, priority=3, decision__label="色情低俗", decision__is_violation=True)
    # The second item has a media file: the first screen preloads it.
    second = ReviewTaskFactory(decision__policy_version=policy_version, priority=2, decision__video__title="SECOND")
    third = _task(policy_version, priority=1, decision__video__title="THIRD")
    moderator = make_user("moderator")
    sign_in(page, moderator.username)

    page.goto("/review/")
    # CSS and JS are served (the hotkeys below only work if workbench.js ran).
    assert page.request.get("/static/workbench.css").status == 200
    page.keyboard.press("n")  # claim next (and the one after it, ahead)
    page.wait_for_url(f"**/review/{first.pk}/")
    prefetch = page.locator("link[rel=prefetch][data-ahead-media]")
    assert prefetch.get_attribute("href") == second.decision.video.file.url

    # Severity by keyboard: "0" (none) is not allowed for the model's violation label, "2" is medium.
    page.keyboard.press("0")
    assert page.locator("input[name=severity]:checked").count() == 0
    page.keyboard.press("2")
    assert page.locator("input[name=severity]:checked").get_attribute("value") == "medium"

    # Approve → instant next: the item claimed ahead (fetched when this screen loaded) is swapped in at
    # once, and the decision goes to the server in the background. No page load.
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")
    page.evaluate("window.__samePage = 1")
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if r.resource_type == "document" else None)
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_url(f"**/review/{second.pk}/")
    assert "SECOND" in page.locator(".review-head h1").inner_text()
    page.wait_for_function(
        "() => document.getElementById('review-status').textContent.includes('approved the model verdict')"
    )
    assert page.evaluate("window.__samePage") == 1 and loads == [], loads
    assert "2nd in this session" in page.locator("[data-session-pos]").inner_text()

    # Override with the searchable picker: "o" focuses the filter, typing narrows the list.
    page.keyboard.press("o")
    assert page.evaluate("document.activeElement.dataset.pickerFilter") == ""
    page.keyboard.type("exagg")
    visible = page.locator("[data-pick-option]:visible")
    assert visible.count() == 1 and "Exaggerated product claims" in visible.inner_text()
    page.keyboard.press("ArrowDown")  # the first match: focused and chosen
    assert page.evaluate("document.activeElement.value") == "夸大商品功效"
    page.keyboard.press("3")  # severity high
    page.keyboard.press("Tab")  # to the severity group
    page.keyboard.press("Tab")  # note
    assert page.evaluate("document.activeElement.name") == "note"
    page.keyboard.type("seen at 0:03")
    page.keyboard.press("Tab")  # Override button
    page.keyboard.press("Enter")
    page.wait_for_selector(f'#review-screen[data-task="{third.pk}"]')
    assert page.evaluate("window.__samePage") == 1
    page.wait_for_function("() => window.reviewState().pending === 0")

    # Typing a name and Enter picks the first match and submits the override; the queue is then empty.
    page.keyboard.press("o")
    page.keyboard.type("private deals")
    page.keyboard.press("ArrowDown")  # chosen: its severities are offered
    page.keyboard.press("1")  # severity low (a violation always has one)
    page.keyboard.press("o")
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/")
    assert "Queue is empty" in page.content()

    approve = Review.objects.get(task=first)
    override = Review.objects.get(task=second)
    last = Review.objects.get(task=third)
    assert (approve.verdict, approve.severity, approve.reviewer) == ("approve", "medium", moderator)
    assert (override.verdict, override.label, override.severity) == ("override", "夸大商品功效", "high")
    assert override.note == "seen at 0:03"
    assert (last.verdict, last.label, last.severity) == ("override", "引导私下交易", "low")


@pytest.mark.django_db(transaction=True)
def test_cot_patch_evidence_highlights_the_box_and_frame_evidence_marks_the_strip(page, make_user, policy_version):
    from moderation.media.models import Keyframe, Patch

    task = _task(policy_version)
    video = task.decision.video
    kf = Keyframe.objects.create(
        video=video, index=0, timestamp=1.5, image="keyframes/x.jpg", selected=True, width=160, height=90
    )
    patch = Patch.objects.create(keyframe=kf, rank=0, method=Patch.Method.VIT, x=5, y=5, w=40, h=20, score=0.8)
    task.decision.__class__.objects.filter(pk=task.decision_id).update(
        cot=[
            {
                "key": "analysis",
                "title": "Analysis",
                "text": "see evidence",
                "evidence": [
                    {"kind": "patch", "ref": patch.pk, "label": "the box"},
                    {"kind": "frame", "ref": kf.pk, "label": "the frame"},
                ],
            }
        ]
    )
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")

    page.locator(f"a[data-patch='{patch.pk}']").focus()
    page.keyboard.press("Enter")
    assert "hl" in page.locator(f"#patch-{patch.pk}").get_attribute("class")
    page.locator(f"a[data-frame='{kf.pk}']").focus()
    page.keyboard.press("Enter")
    assert "hl" in page.locator(f"#frame-{kf.pk}").get_attribute("class")


@pytest.mark.django_db(transaction=True)
def test_wrong_role_is_refused(page, make_user, policy_version):
    _task(policy_version)
    labeler = make_user("labeler")
    sign_in(page, labeler.username)
    response = page.goto("/review/")
    assert response.status == 403
    assert "Claim next" not in page.content()


@pytest.mark.django_db(transaction=True)
def test_hostile_title_ocr_and_cot_render_as_inert_text(page, make_user, policy_version):
    script = "<script>window.__pwned=1</script>"
    img = '<img src=x onerror="window.__pwned=1;alert(1)">'
    payload = f"{script}{img}"
    task = _task(
        policy_version,
        decision__video__title=payload,
        decision__video__ocr_text=f"{payload}\nbuy now {img}",
        decision__cot=[
            {
                "key": "analysis",
                "title": payload,
                "text": payload,
                "evidence": [{"kind": "segment", "label": img, "t": 1}],
            }
        ],
    )
    moderator = make_user("moderator")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, moderator.username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.wait_for_load_state("networkidle")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []
    assert page.locator("img[src=x]").count() == 0
    # The payloads are shown as text where the reviewer can read them.
    assert script in page.locator(".review-head h1").inner_text()
    assert img in page.locator("#ocr").inner_text()
    assert script in page.locator("#cot").inner_text()


@pytest.mark.django_db(transaction=True)
def test_a_refused_htmx_submit_is_explained_on_the_page(page, make_user, policy_version):
    # The model's severity: Approve alone is a whole verdict (without one the screen asks for it before sending).
    task = _task(policy_version, decision__label="色情低俗", decision__is_violation=True, decision__severity="medium")
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    # A NUL character (pasted from a broken source) is said on its field, and nothing is sent.
    page.evaluate("document.querySelector('textarea[name=note]').value = 'a\\u0000b'")
    page.click("button[value=approve]")
    note = page.locator("textarea[name=note] + .nul-error")
    note.wait_for()
    assert "NUL character" in note.inner_text() and page.locator("textarea[name=note]").get_attribute("aria-invalid")
    assert page.locator("textarea[name=note]").input_value() == "a\u0000b"  # nothing the reviewer entered is lost
    assert not Review.objects.exists()
    page.fill("textarea[name=note]", "ab")  # typing it again clears the message
    assert page.locator(".nul-error").count() == 0
    page.fill("textarea[name=note]", "")
    alert = page.locator("[data-review-failure]")
    assert page.url.endswith(f"/review/{task.pk}/")  # still on the item, which stays claimed

    # The claim is lost (the lease lapsed and another moderator took the item): the screen says so, and
    # no button that acts on the item still looks or is clickable (the server would refuse each one).
    from django.utils import timezone

    from moderation.review.services import review_claim_next

    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert review_claim_next(user=make_user("moderator"), queue=task.queue) == task
    page.fill("textarea[name=note]", "")
    page.click("button[value=approve]")
    page.wait_for_selector("#review-screen[data-claim-lost]")
    assert "Your claim on this item is lost" in alert.inner_text()
    assert page.locator("#verdict button:enabled").count() == 0  # Approve, Override, Skip, Release
    approve = page.locator("button[value=approve]")
    assert approve.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(36, 81, 199)"  # not the live blue
    assert alert.locator("a").get_attribute("href") == "/review/"
    assert not Review.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_back_after_submit_and_next_shows_the_item_as_reviewed_and_the_tab_title_follows(
    page, make_user, policy_version
):
    first = _task(policy_version, priority=2, decision__video__title="FIRST")
    second = _task(policy_version, priority=1, decision__video__title="SECOND")
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    # The decision is held on its way, so Back comes before the server has recorded it (as on a slow network).
    held = []
    page.route(f"**/review/{first.pk}/submit/", lambda route: held.append(route))
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    assert page.title() == f"Review #{second.pk} · video #{second.decision.video_id} · Review workbench"

    page.go_back()
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => document.getElementById('review-status').textContent.includes('Recording the last')")
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_selector(f'#review-screen[data-task="{first.pk}"]')
    verdict = page.locator("#verdict").inner_text()
    assert "Recorded: Approve" in verdict  # loaded afresh: reviewed, no live form to submit again
    assert page.locator(f'form[action$="/review/{first.pk}/submit/"]').count() == 0


@pytest.mark.django_db(transaction=True)
def test_instant_next_loses_nothing_and_records_nothing_twice_when_the_network_fails(page, make_user, policy_version):
    first = _task(policy_version, priority=3, decision__video__title="FIRST")
    second = _task(policy_version, priority=2, decision__video__title="SECOND")
    third = _task(policy_version, priority=1, decision__video__title="THIRD")
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState().ready")

    # The server never gets the decision (both tries fail): the item comes back with the reason.
    page.route("**/submit/", lambda route: route.abort())
    page.keyboard.press("a")
    failure = page.locator(f'#review-screen[data-task="{first.pk}"] [data-review-failure]')
    failure.wait_for()
    assert "Not recorded" in failure.inner_text() and "could not be reached" in failure.inner_text()
    assert page.url.endswith(f"/review/{first.pk}/") and not Review.objects.exists()
    page.unroute("**/submit/")

    # The server records it but the answer is lost: the automatic retry gets the recorded verdict back.
    calls: list[int] = []

    def lose_first_answer(route):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            route.fetch()  # reaches the server
            route.abort()  # ...but the browser never hears back
        else:
            route.continue_()

    page.route("**/submit/", lose_first_answer)
    page.keyboard.press("a")  # decide again: the item claimed ahead is swapped in at once
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0 && window.reviewState().ready")
    assert len(calls) == 2
    assert Review.objects.filter(task=first).count() == 1 and Review.objects.count() == 1
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{third.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    assert sorted(Review.objects.values_list("task_id", flat=True)) == [first.pk, second.pk]


@pytest.mark.django_db(transaction=True)
def test_a_skip_counts_as_an_item_worked_in_the_session_once(page, make_user, policy_version):
    """A skip is a plain form post, not a decision sent by review.js: the next item read "1st in this session" (the
    message it lands with is marked data-review-worked, which workbench.js counts, as review.js counts a decision)."""
    first = _task(policy_version, priority=2)
    second = _task(policy_version, priority=1)
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    page.keyboard.press("n")  # claim next
    page.wait_for_url(f"**/review/{first.pk}/")
    assert "1st in this session" in page.locator("[data-session-pos]").inner_text()

    page.locator("#review-screen button[data-hotkey=n]").click()  # Skip
    page.wait_for_url(f"**/review/{second.pk}/")
    assert f"Skipped item #{first.pk}" in page.content()
    assert "2nd in this session" in page.locator("[data-session-pos]").inner_text()
    page.reload()  # the skip's message is shown once: nothing is counted again
    assert "2nd in this session" in page.locator("[data-session-pos]").inner_text()
