"""Tag review in a real headless Chromium: a reviewer accepts, rejects and adds tags from the tags
queue, an admin retrains the ranker from those events, and the next video is ranked by it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from moderation.tagging.models import TagEvent, TagRanker, TagSuggestion, VideoTag
from moderation.tagging.services import tag_candidates_generate, tag_set_default
from tests.browser import conftest as browser_conftest
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_accessibility import _violations as axe_violations
from tests.factories import DecisionFactory, VideoFactory

CHROMIUM = browser_conftest.CHROMIUM
page = browser_conftest.page  # the same Chromium and page fixtures as the review browser tests


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for this module's tests, each in its own context (``page``)."""
    with browser_conftest.chromium_launched() as chromium:
        yield chromium


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


@pytest.mark.django_db(transaction=True)
def test_reviewer_accepts_rejects_adds_and_the_ranker_retrains(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode, celery_worker, settings
):
    settings.TAG_RANKER_MIN_EVENTS = 3
    tag_set = tag_set_default()
    tag_set.max_suggestions = 4  # the fixture vocabulary is tiny: show only the top few
    tag_set.save()
    first = DecisionFactory(
        video=VideoFactory(title="周末在家做火锅 美食教程", file=""), policy_version=policy_version, confidence=0.9
    )
    second = DecisionFactory(video=VideoFactory(title="猫咪在吃火锅", file=""), policy_version=policy_version)
    for d in (first, second):
        tag_candidates_generate(video_id=d.video_id, encode=encode)
    admin = make_user("admin")
    sign_in(page, admin.username)

    page.goto("/tags/")
    page.keyboard.press("n")  # claim next: the first video
    page.wait_for_selector("[data-tags-form]")
    assert "周末在家做火锅" in page.inner_text("#tag-video")
    chips = page.locator("[data-chip] .chip-name")
    names = chips.all_inner_texts()
    assert "火锅" in names and "舞蹈" not in names and len(names) == 4
    # Nothing starts selected at the default (conservative) pre-select threshold.
    assert page.locator("input[name=tag]:checked").count() == 0
    # Accept 火锅 by its number key, reject the rest by leaving them; evidence is one click away.
    key = str(names.index("火锅") + 1)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press(key)
    assert page.locator(f"[data-chip-key='{key}']").is_checked()
    # Add 舞蹈 by type-ahead search: "/" focuses the search, Enter adds the first match.
    page.keyboard.press("/")
    page.keyboard.type("舞")
    page.wait_for_selector("[data-add-tag]")
    # Enter while an input method composes the word (pinyin) is the input method's: no chip is added yet.
    page.dispatch_event("[data-tag-search]", "keydown", {"key": "Enter", "isComposing": True, "bubbles": True})
    assert page.locator("li.chip.added").count() == 0
    page.keyboard.press("Enter")
    assert page.locator("li.chip.added .chip-name").inner_text() == "舞蹈"
    # The search box, emptied, keeps the focus: Enter there submits (it did nothing before).
    assert page.evaluate("document.activeElement.matches('[data-tag-search]')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "猫咪在吃火锅" in page.inner_text("#tag-video")  # submit-and-next

    events = {e.tag.name: e.action for e in TagEvent.objects.filter(video=first.video)}
    assert events["火锅"] == "accept" and events["舞蹈"] == "add"
    assert sum(a == "reject" for a in events.values()) == len(names) - 1
    assert sorted(VideoTag.objects.filter(video=first.video).values_list("tag__name", flat=True)) == ["火锅", "舞蹈"]

    # Retrain from the UI; the worker trains it and re-scores the next video's suggestions. The page follows the run
    # and reloads itself once it ended (HX-Refresh): wait for that page, not on a clock (a reload of our own could
    # cut across the page's).
    page.goto("/tags/ranker/")
    with page.expect_navigation():
        page.click("[data-retrain]")
    ended = page.locator("#ranker-runs [data-run]:not([data-run-status=queued]):not([data-run-status=running])")
    ended.wait_for(timeout=180_000)  # the worker fits the ranker; a loaded CI machine is slow
    assert ended.get_attribute("data-run-status") == "done", page.inner_text("#ranker-runs")
    assert page.locator("[data-ranker-kind=logistic]").count() == 1
    ranker = TagRanker.objects.get(is_active=True)
    assert ranker.kind == TagRanker.Kind.LOGISTIC
    assert ranker.n_events == len(events) == 5  # 1 accept, 3 rejects, 1 add (with its candidate features)
    assert set(TagSuggestion.objects.filter(video=second.video).values_list("ranker_id", flat=True)) == {ranker.pk}


@pytest.mark.django_db(transaction=True)
def test_submitting_with_no_tag_ticked_asks_before_rejecting_them_all(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode
):
    """Enter with nothing ticked rejected every suggestion at once without a word: the screen asks first, in the page
    (the app's one confirm step, not the browser's confirm() box); Cancel keeps the video and the keyboard on the
    chips, "Yes, reject them all" submits the rejections as before."""
    tag_set = tag_set_default()
    tag_set.max_suggestions = 4
    tag_set.save()
    decision = DecisionFactory(
        video=VideoFactory(title="周末在家做火锅 美食教程", file=""), policy_version=policy_version, confidence=0.9
    )
    tag_candidates_generate(video_id=decision.video_id, encode=encode)
    admin = make_user("admin")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, admin.username)

    page.goto("/tags/")
    page.keyboard.press("n")
    page.wait_for_selector("[data-tags-form]")
    shown = page.locator("[data-chip] input[name=tag]").count()
    assert shown == 4 and page.locator("input[name=tag]:checked").count() == 0
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Enter")  # "submit tags and next", with nothing ticked
    step = page.locator("[data-confirm-reject-all]")
    step.wait_for()
    assert step.inner_text().startswith(f"Reject all {shown} suggested tags?")
    assert page.evaluate("() => document.activeElement.matches('[data-confirm-yes].danger')")
    # Cancel (Escape on the step): nothing is recorded, the video stays, and the digits tick chips at once.
    page.keyboard.press("Escape")
    assert step.is_hidden()
    assert "周末在家做火锅" in page.inner_text("#tag-video") and not TagEvent.objects.exists()
    assert page.evaluate("() => document.activeElement.matches('[data-chip-key]')")
    page.keyboard.press("1")
    page.keyboard.press("1")  # ticked and unticked again: still nothing ticked
    page.keyboard.press("Enter")
    step.wait_for()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # on "Yes, reject them all", which has the focus
    assert dialogs == []
    events = TagEvent.objects.filter(video=decision.video)
    assert events.count() == shown and set(events.values_list("action", flat=True)) == {"reject"}


@pytest.mark.django_db(transaction=True)
def test_switching_the_tag_set_asks_before_dropping_changed_chips(page, make_user, policy_version):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    from moderation.review.services import review_claim_next
    from moderation.tagging.models import TagSet
    from moderation.tagging.services import tags_import
    from tests.factories import TagTaskFactory

    tags_import(lines=["美食\t吃货, 做饭", "火锅"])
    default, other = tag_set_default(), TagSet.objects.create(slug="other", name="Other set")
    admin = make_user("admin")
    task = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=admin, queue=task.queue) == task
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, admin.username)
    url = reverse("moderation:tag_task", args=[task.pk])
    step = page.locator("[data-confirm-switch]")

    # Nothing changed: the switch reloads at once, no question asked.
    page.goto(f"{url}?set={default.slug}")
    with page.expect_navigation():
        page.select_option("select[name=set]", other.slug)
    assert page.url.endswith(f"?set={other.slug}") and dialogs == []

    # A tag added here: the switch asks; "Cancel" keeps the page, the chip and the set as they were.
    page.fill("[data-tag-search]", "火")
    page.wait_for_selector("[data-add-tag]")
    page.keyboard.press("Enter")
    assert page.locator("li.chip.added input[name=tag]").is_checked()
    page.select_option("select[name=set]", default.slug)
    step.wait_for()  # asked in the page, as the app's other confirmations are (it was the browser's confirm())
    assert "will be lost" in step.inner_text() and default.name in step.inner_text() and dialogs == []
    step.get_by_role("button", name="Cancel").click()
    assert step.is_hidden()
    assert page.url.endswith(f"?set={other.slug}") and page.input_value("select[name=set]") == other.slug
    assert page.locator("li.chip.added input[name=tag]").is_checked()
    # "Yes, switch and drop them" switches.
    page.select_option("select[name=set]", default.slug)
    with page.expect_navigation():
        step.get_by_role("button", name="Yes, switch and drop them").click()
    assert dialogs == [] and page.url.endswith(f"?set={default.slug}")


@pytest.mark.django_db(transaction=True)
def test_an_editor_picks_an_alias_target_by_keyboard_and_a_refusal_keeps_it(page, make_user):  # type: ignore[no-untyped-def]
    """The curation screen's "alias of" box: typing searches the vocabulary (the review screen's endpoint),
    arrows and Enter pick a tag, Enter sends; a refusal redraws the row with the typed tag still in the box
    and the reason beside it, and the box searches again in the redrawn row."""
    from moderation.tagging.models import Tag, TagProposal
    from moderation.tagging.services import tags_import

    tags_import(lines=["游戏\t电子游戏", "手游", "桌游\t剧本杀", "美食"])
    food = Tag.objects.get(name="美食")
    proposal = TagProposal.objects.create(name="剧本杀", key="剧本杀", nearest_tag=food, nearest_cosine=0.81)
    sign_in(page, make_user("policy_editor").username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/tags/curation/")
    box = page.locator(f"#alias-of-{proposal.pk}")
    options = page.locator(f"#alias-options-{proposal.pk} [role=option]")
    box.fill("")
    box.press_sequentially("游")
    page.wait_for_function(
        f"() => document.querySelectorAll('#alias-options-{proposal.pk} [role=option]').length === 3"
    )
    assert options.locator(".pick-name").all_inner_texts() == ["游戏", "手游", "桌游"]
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    box.press("ArrowDown")
    assert axe_violations(page) == []  # the open list, an option highlighted
    # Enter while an input method composes a word confirms the word: it neither picks nor sends.
    box.dispatch_event("keydown", {"key": "Enter", "isComposing": True, "bubbles": True})
    assert box.input_value() == "游" and box.get_attribute("aria-expanded") == "true"
    box.press("ArrowUp")  # back to the first
    assert box.get_attribute("aria-activedescendant") == options.nth(0).get_attribute("id")
    box.press("Enter")  # picks; the form is not sent yet
    assert box.input_value() == "游戏" and box.get_attribute("aria-expanded") == "false"
    assert TagProposal.objects.get(pk=proposal.pk).status == "pending"
    box.press("Enter")  # sends: refused, the phrase is 桌游's alias
    refusal = page.locator(f"#refusal-{proposal.pk}")
    refusal.wait_for()
    assert (
        "“剧本杀” cannot become an alias of “游戏”: “剧本杀” is an alias of another tag, “桌游”."
        in refusal.inner_text()
    )
    box = page.locator(f"#alias-of-{proposal.pk}")
    assert box.input_value() == "游戏" and box.get_attribute("aria-invalid") == "true"
    page.wait_for_function(f"() => document.activeElement && document.activeElement.id === 'alias-of-{proposal.pk}'")
    assert axe_violations(page) == []  # the refused box and its reason
    # Escape closes the list without changing the box; a click on an option picks it.
    box.fill("")
    box.press_sequentially("桌")
    page.wait_for_function(
        f"() => document.querySelectorAll('#alias-options-{proposal.pk} [role=option]').length === 1"
    )
    box.press("Escape")
    assert box.input_value() == "桌" and page.locator(f"#alias-options-{proposal.pk}").is_hidden()
    box.press("ArrowDown")  # opens it again
    options.first.wait_for()
    options.first.click()
    assert box.input_value() == "桌游"
    box.press("Enter")
    page.locator(f"#proposal-{proposal.pk} .outcome").wait_for()
    assert "Made an alias of an existing tag: 桌游" in page.inner_text(f"#proposal-{proposal.pk}")
    assert TagProposal.objects.get(pk=proposal.pk).status == "merged"


@pytest.mark.django_db(transaction=True)
def test_the_review_screens_tags_panel_searches_twice_and_its_evidence_links_land(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode
):
    """Walked in Chromium on the review screen (the panel loaded there by htmx): the first search's results replaced
    the result list itself (the panel's form swaps outerHTML and the search box inherited it), so the second search
    showed nothing and no tag could be added by search; and a chip's evidence links (#title-0, #ocr-1, #seg-0)
    pointed at ids only the tag screen had, so a click went nowhere."""
    from tests.browser.test_review_browser import _task
    from tests.factories import SegmentFactory

    tag_set = tag_set_default()
    tag_set.max_suggestions = 3  # the fixture vocabulary is tiny: 汽车 and 舞蹈 are found by search, not suggested
    tag_set.save()
    video = VideoFactory(title="周末在家做火锅", ocr_text="片头 | 火锅店 开业", file="")
    SegmentFactory(video=video, index=0, start=1.5, end=3.0, text="今天吃火锅")
    task = _task(policy_version, decision__video=video)
    tag_candidates_generate(video_id=video.pk, encode=encode)
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.wait_for_selector("#tags [data-tags-form]")

    search = page.locator("#tags [data-tag-search]")
    search.fill("舞")
    page.wait_for_selector("#tags [data-tag-results] [data-add-tag]")
    search.fill("汽")  # a second search lands in the list too
    page.wait_for_function(
        "() => document.querySelector('#tags [data-tag-results]')?.textContent.includes('汽车')"
        " && !document.querySelector('#tags [data-tag-results]').textContent.includes('舞蹈')"
    )
    search.press("Enter")  # the first match becomes a ticked chip, the list empties for the next search
    car = page.locator("#tags [data-chip]", has=page.locator(".chip-name", has_text="汽车"))
    assert car.locator("input[name=tag]").is_checked()
    assert page.locator("#tags [data-tag-results] li").count() == 0
    search.fill("舞")
    page.wait_for_selector("#tags [data-tag-results] [data-add-tag]")

    # Each evidence link of the 火锅 chip points at text the review screen shows, quoting it.
    chip = page.locator("#tags [data-chip]", has=page.locator(".chip-name", has_text="火锅")).first
    chip.locator("details.evidence summary").click()
    hrefs = chip.locator("details.evidence a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert {"#title-0", "#ocr-1", "#seg-0"} <= set(hrefs), hrefs
    for href, text in (("#title-0", "周末在家做火锅"), ("#ocr-1", "火锅店 开业"), ("#seg-0", "1.5s")):
        assert page.locator(href).inner_text().strip() == text
    chip.locator("details.evidence a[href='#ocr-1']").click()
    page.wait_for_function("() => location.hash === '#ocr-1'")
    assert (
        page.locator("#ocr-1").evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    )  # the line it landed on


@pytest.mark.django_db(transaction=True)
def test_saving_the_tags_on_the_review_screen_keeps_the_keyboard_in_the_panel(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode
):
    """The review screen's tags panel is swapped by htmx when saved: the focus fell to the page's body, so a
    keyboard user's next Tab started again from the top bar. It lands on the panel's "Tags saved" line now, and
    the next Tab on the first chip."""
    from tests.factories import ReviewTaskFactory

    task = ReviewTaskFactory(
        decision__policy_version=policy_version,
        decision__video__file="",
        decision__video__title="周末在家做火锅 美食教程",
    )
    tag_candidates_generate(video_id=task.decision.video_id, encode=encode)
    sign_in(page, make_user("moderator").username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")  # claims the item
    assert page.url.endswith(f"/review/{task.pk}/")
    page.locator("#tags-panel input[name=tag]").first.focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save tags").focus()
    page.keyboard.press("Enter")
    saved = page.locator("#tags-panel .msg-success")
    saved.wait_for()
    assert saved.inner_text().startswith("Tags saved: 1 accepted")
    assert page.evaluate("document.activeElement.matches('#tags-panel .msg-success')")
    # Nothing of htmx still in flight or settling (a loaded machine lags there), then one Tab.
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
    page.keyboard.press("Tab")
    try:
        page.wait_for_function("() => document.activeElement.matches('#tags-panel input[name=tag]')", timeout=5000)
    except Exception as exc:  # noqa: BLE001 - say where the focus went instead
        raise AssertionError(page.evaluate("document.activeElement.outerHTML.slice(0, 300)")) from exc


@pytest.mark.django_db(transaction=True)
def test_the_tag_search_results_come_into_view_under_the_chips(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode
):
    """Walked at 1440x900: with a full list of chips the search box sits at the window's bottom edge, and what it
    found opened below it, out of sight: Enter added a "first match" the reviewer had not seen.

    Walk 18: inside the window was not enough. With the walk's twelve chips the sticky "Submit tags and next" row
    covered the box "/" had focused and the results under it: the reviewer typed "cook" and saw nothing."""
    from moderation.tagging.services import _VOCAB_CACHE, tags_embed_missing, tags_import

    # More chips than the window holds above the search box (the walk's item had twelve, with evidence lines).
    tags_import(lines=["宠物", "音乐", "健身", "科技", "美妆", "搞笑", "电影"])
    tags_embed_missing(encode=encode)
    _VOCAB_CACHE.clear()
    tag_set = tag_set_default()
    tag_set.show_threshold = 0
    tag_set.max_suggestions = 18
    tag_set.save()
    decision = DecisionFactory(
        video=VideoFactory(title="周末在家做火锅 美食教程 旅游 风景 游戏 舞蹈 汽车", file=""),
        policy_version=policy_version,
    )
    tag_candidates_generate(video_id=decision.video_id, encode=encode)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/tags/")
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.locator("[data-chip]").count() == 18

    def clear_of_the_submit_row(selector: str) -> float:
        """How far above the sticky row's top the element's bottom is (negative: under the row)."""
        return float(
            page.evaluate(
                """(selector) => document.querySelector('.tags-submit-row').getBoundingClientRect().top
                - document.querySelector(selector).getBoundingClientRect().bottom""",
                selector,
            )
        )

    # The walk's window: the box inside it but at its bottom edge, where the sticky row is (the page scrolled there
    # as a reviewer reading the chips had). Focus does not scroll a box already in the window.
    page.evaluate(
        """() => window.scrollBy(0, document.querySelector('[data-tag-search]').getBoundingClientRect().bottom
        - window.innerHeight + 10)"""
    )
    assert clear_of_the_submit_row("[data-tag-search]") < 0  # under the row before "/"
    page.keyboard.press("/")
    page.wait_for_timeout(300)
    assert clear_of_the_submit_row("[data-tag-search]") >= 0
    page.keyboard.type("汽")
    first = page.locator("[data-tag-results] [data-add-tag]").first
    first.wait_for()
    page.wait_for_timeout(300)
    box = first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900, box
    assert clear_of_the_submit_row("[data-tag-results]") >= 0
    page.screenshot(path=str(shots_dir() / "walk18-tag-search-above-submit-row.png"))


@pytest.mark.django_db(transaction=True)
def test_saving_the_review_screens_tags_with_none_ticked_asks_before_rejecting_them_all(  # type: ignore[no-untyped-def]
    page, make_user, policy_version, vocabulary, encode, tmp_path
):
    """The tag screen asks "Reject all N suggested tags?" before a submit with nothing ticked; the review screen's
    tags panel ("Save tags", sent by htmx) saved the same reject-all without a word. The panel asks the same
    question, from the same rule (static/tagging.js), in the page: Cancel sends nothing, "Yes, reject them all" saves
    the rejections as before."""
    from pathlib import Path

    from tests.factories import ReviewTaskFactory

    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    task = ReviewTaskFactory(
        decision__policy_version=policy_version,
        decision__video__file="",
        decision__video__title="周末在家做火锅 美食教程",
    )
    tag_candidates_generate(video_id=task.decision.video_id, encode=encode)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/tags/" in r.url else None)
    sign_in(page, make_user("moderator").username)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")  # claims the item
    boxes = page.locator("#tags-panel [data-chip] input[name=tag]")
    boxes.first.wait_for()
    shown = page.locator("#tags-panel input[name=shown]").count()
    assert shown >= 2
    for i in range(boxes.count()):
        boxes.nth(i).uncheck()

    page.get_by_role("button", name="Save tags").click()
    step = page.locator("#tags-panel [data-confirm-reject-all]")
    step.wait_for()
    assert step.inner_text().startswith(f"Reject all {shown} suggested tags?") and dialogs == []
    page.screenshot(path=str(shots / "review-tags-reject-all-asked.png"))
    # Cancel: nothing sent, the chips as they were, the keyboard on the first chip.
    step.get_by_role("button", name="Cancel").click()
    page.wait_for_timeout(300)  # htmx sends at once: a request it had sent would be seen by now
    assert posts == [] and not TagEvent.objects.exists() and step.is_hidden()
    assert page.locator("#tags-panel .msg-success").count() == 0
    assert page.evaluate("() => document.activeElement.matches('#tags-panel [data-chip-key]')")
    page.screenshot(path=str(shots / "review-tags-reject-all-cancelled.png"))

    page.get_by_role("button", name="Save tags").click()
    step.get_by_role("button", name="Yes, reject them all").click()
    saved = page.locator("#tags-panel .msg-success")
    saved.wait_for()
    assert dialogs == []
    assert saved.inner_text().startswith(f"Tags saved: 0 accepted, {shown} rejected")
    events = TagEvent.objects.filter(video=task.decision.video)
    assert events.count() == shown and set(events.values_list("action", flat=True)) == {"reject"}
    page.screenshot(path=str(shots / "review-tags-reject-all-saved.png"))
