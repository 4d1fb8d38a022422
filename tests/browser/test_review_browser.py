"""The review workbench in a real headless Chromium (Playwright) against a live server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from moderation.review.models import Review, ReviewTask
from tests.factories import ReviewTaskFactory

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-test-123"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop; Django must not refuse ORM calls made beside it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def _login(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login/" not in page.url, "login failed"


def _task(policy_version, **kwargs) -> ReviewTask:  # type: ignore[no-untyped-def]
    kwargs.setdefault("decision__policy_version", policy_version)
    kwargs.setdefault("decision__video__file", "")
    return ReviewTaskFactory(**kwargs)


@pytest.mark.django_db(transaction=True)
def test_moderator_claims_and_reviews_with_the_keyboard_only(page, make_user, policy_version):
    first = _task(policy_version, priority=2)
    second = _task(policy_version, priority=1)
    moderator = make_user("moderator")
    _login(page, moderator.username)

    page.goto("/review/")
    # CSS and JS are served (the hotkeys below only work if workbench.js ran).
    assert page.request.get("/static/workbench.css").status == 200
    page.keyboard.press("n")  # claim next
    page.wait_for_url(f"**/review/{first.pk}/")
    page.keyboard.press("a")  # approve → submit-and-next
    page.wait_for_url(f"**/review/{second.pk}/")
    assert "Recorded approve" in page.content()

    page.keyboard.press("o")  # focus the label picker
    assert page.evaluate("document.activeElement.name") == "label"
    page.keyboard.press("ArrowDown")  # safe label
    page.keyboard.press("ArrowDown")  # first violation label
    page.keyboard.press("Tab")  # note
    page.keyboard.type("seen at 0:03")
    page.keyboard.press("Tab")  # Override button
    page.keyboard.press("Enter")
    page.wait_for_url("**/review/")
    assert "Queue is empty" in page.content()

    approve = Review.objects.get(task=first)
    override = Review.objects.get(task=second)
    assert approve.verdict == "approve" and approve.reviewer == moderator
    assert override.verdict == "override" and override.label != policy_version.safe_label
    assert override.note == "seen at 0:03"


@pytest.mark.django_db(transaction=True)
def test_wrong_role_is_refused(page, make_user, policy_version):
    _task(policy_version)
    labeler = make_user("labeler")
    _login(page, labeler.username)
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
    _login(page, moderator.username)
    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    page.wait_for_load_state("networkidle")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []
    assert page.locator("img[src=x]").count() == 0
    # The payloads are shown as text where the reviewer can read them.
    assert script in page.locator("h3", has_text="window.__pwned").first.inner_text()
    assert img in page.locator("#ocr").inner_text()
    assert script in page.locator("#cot").inner_text()
