"""What a walk through every role found in Chromium at 1440x900 and at 200% zoom (720x450 CSS pixels): the page's
messages sat outside every landmark, and the model registry was wider than the window at 200% zoom (saving the tags
on the review screen, which dropped the keyboard focus, is tested with the tag screens: tests/moderation/tagging)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations
from tests.browser.test_review_browser import _task

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_a_page_with_a_message_and_a_refused_request_has_no_axe_violation(page, make_user, policy_version):
    """After an action, its message ("Item #N is back in the queue.") was the page's one axe violation (content
    outside every landmark); a refused htmx request's list (role="alert" on the <ul>) lost its list semantics."""
    task = _task(policy_version)
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    with page.expect_navigation():
        page.click("button:text-is('Release')")
    assert f"Item #{task.pk} is back in the queue." in page.locator("ul.messages").inner_text()
    assert _violations(page) == []
    page.evaluate("showRequestError('The server refused this (HTTP 400).')")
    assert page.locator("[role=alert] ul.messages[data-request-errors] li").inner_text().startswith("The server")
    assert _violations(page) == []


@pytest.mark.django_db(transaction=True)
def test_the_model_registry_fits_the_window_at_200_percent_zoom(page, make_user, settings, tmp_path):
    """A trained version's base model and adapter paths kept an 18rem column (for 1440x900): at 200% zoom the
    registry was 290 px wider than the window (with the Promote row's policy choice), its buttons off screen."""
    from tests.factories import ModelVersionFactory, PolicyFactory, PolicyVersionFactory

    long = "/srv/workbench/var/training/jobs/1234/checkpoints/adapter-final"
    ModelVersionFactory(name="sft-job-1234", backend="transformers", base_model=long, adapter_path=long + "/a")
    # Its Promote row offers "under <policy>": the choice was as wide as the longest policy name.
    PolicyVersionFactory(policy=PolicyFactory(slug="blm", name="BLM-Guard advertising risk (short-video ads)"))
    page.set_viewport_size({"width": 720, "height": 450})  # 1440x900 at 200%
    sign_in(page, make_user("admin").username)
    page.goto(reverse("training:model_list"))
    assert page.locator("tr[data-version='sft-job-1234']").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 1
    page.set_viewport_size({"width": 1440, "height": 900})
    width = page.locator("td.model-paths").first.bounding_box()
    assert width is not None and width["width"] >= 17 * 16  # at 1440 the paths keep their column


@pytest.mark.django_db(transaction=True)
def test_a_cot_speech_evidence_link_leaves_the_keyboard_on_the_player(page, make_user, policy_version, tmp_path):
    """A CoT evidence link with only a time ("«message me privately» @ 2.5s") seeks the player: it focused the
    player, then the link's own jump to #player took the focus away to the page's body, so the keyboard user could
    not press Space to play from there."""
    from workbench import storage

    (tmp_path / "v.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"z" * 2048)
    name = storage.store_file(tmp_path / "v.mp4", "videos/walk-evidence.mp4")
    evidence = [{"kind": "segment", "label": "«message me privately»", "t": 2.5}]
    _task(
        policy_version,
        decision__video__file=name,
        decision__cot=[{"key": "analysis", "title": "Analysis", "text": "says so", "evidence": evidence}],
    )
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    link = page.locator("#cot a[data-seek]", has_text="message me privately")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_timeout(200)
    assert page.evaluate("document.activeElement.matches('video[data-player]')")


@pytest.mark.django_db(transaction=True)
def test_after_a_skip_its_message_and_the_whole_decision_panel_fit_the_window(page, make_user, policy_version):
    """A skip now says which item was passed on: the message pushed the review screen down, and its columns (sized
    to the window) ran past the bottom edge, the Skip and Release row out of sight until the page was scrolled."""
    # Reasoning and on-screen text long enough that both columns fill the window's height, as a real item's do.
    cot = [
        {"key": f"s{n}", "title": f"Stage {n}", "text": "the speech asks for a private deal. " * 30} for n in range(5)
    ]
    ocr = "\n".join(f"caption line {n}: limited offer, link in bio" for n in range(40))
    first, second = (_task(policy_version, decision__cot=cot, decision__video__ocr_text=ocr) for _ in range(2))
    # And the line over the columns that names a likely re-upload (the demo's items have one).
    from moderation.reproduction.models import ReproCandidate
    from tests.factories import DecidedVideoFactory

    ReproCandidate.objects.create(video=second.decision.video, original=DecidedVideoFactory(title="Earlier"), score=0.9)
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    with page.expect_navigation():
        page.keyboard.press("n")  # skip, with the chosen reason
    assert page.url.endswith(f"/review/{second.pk}/")
    assert f"Skipped item #{first.pk}" in page.locator("ul.messages").inner_text()
    release = page.locator("#verdict button:text-is('Release')").bounding_box()
    assert release is not None and release["y"] + release["height"] <= 900, release
    assert page.evaluate("document.documentElement.scrollHeight - window.innerHeight") <= 1
