"""The main screens of every role in Chromium at 1440x900 under the Content-Security-Policy (workbench/csp.py): no
violation reported on any of them (a ``securitypolicyviolation`` event or Chromium's console line), no script error,
and what scripts do still works: the review screen's keyboard, htmx swaps and indicators, Swagger UI, the player
(from this site, and from the object store's origin). Screenshots in /work/shots/<worktree>/csp-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from moderation.review.models import Review
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_missing_media_browser import _clip, _jpeg
from tests.factories import PolicyVersionFactory, ReviewTaskFactory
from tests.moderation.reproduction.test_pair_browser import _pair_with_media

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

# Before any script of each document: every violation the page's policy reports (enforced or report-only alike).
_LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.effectiveDirective} refused ${e.blockedURI || "inline"} (${e.sourceFile || "the page"}:${e.lineNumber})`));
"""


class Watch:
    """What the policy refused and which scripts failed, per screen looked at."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.problems: dict[str, list[str]] = {}
        page.add_init_script(_LISTEN)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console.append(f"script error: {exc}"))

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(f"console: {message.text}")

    def look(self, name: str, *, shot: bool = True) -> None:
        """Collect what the current document reported so far, under ``name``; take its screenshot."""
        seen = list(self.page.evaluate("window.__cspViolations || ['the listener never ran']")) + self.console
        self.console = []
        if seen:
            self.problems[name] = seen
        if shot:
            self.page.screenshot(path=str(shots_dir() / f"csp-{name.replace(' ', '-')}.png"))

    def visit(self, name: str, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (name, url, response and response.status)
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), name
        self.look(name)


def _video_plays(page: Any) -> float:
    """The player's duration once its metadata loaded (it was fetched and decoded), else the error."""
    return float(
        page.evaluate(
            """async () => {
                const v = document.querySelector("video[data-player]");
                if (v.readyState < 1) await new Promise((ok, no) => {
                    v.addEventListener("loadedmetadata", ok); v.addEventListener("error", () => no(String(v.error && v.error.code)));
                });
                return v.duration;
            }"""
        )
    )


@pytest.mark.django_db(transaction=True)
def test_every_roles_main_screens_report_no_violation_and_their_scripts_work(page, make_user, policy_version, tmp_path):  # type: ignore[no-untyped-def]
    from django.core.files import File

    from annotation.models import Tag2CotTask
    from moderation.reproduction.services import pair_claim_next
    from moderation.review.services import review_claim_next
    from moderation.tagging.services import tag_set_default
    from tests.factories import TagFactory, TagTaskFactory

    with _clip(tmp_path / "clip.mp4").open("rb") as clip:
        first = ReviewTaskFactory(
            decision__policy_version=policy_version, decision__video__file=File(clip, "clip.mp4"), priority=3,
            decision__video__title="FIRST",
        )  # fmt: skip
    second = ReviewTaskFactory(
        decision__policy_version=policy_version, decision__video__file="", priority=2, decision__video__title="SECOND"
    )
    tagging = TagTaskFactory(decision__policy_version=policy_version, suggestions=[("美食", 0.93), ("火锅", 0.71)])
    TagFactory(name="美妆")
    draft = PolicyVersionFactory(
        policy=policy_version.policy, status="draft", is_active=False, number=policy_version.number + 1
    )
    tag2cot = Tag2CotTask.objects.create(
        video=second.decision.video,
        decision=second.decision,
        policy_version=policy_version,
        target_label="正向",
        stages=[{"key": "analysis", "title": "Analysis", "text": "", "evidence": []}],
    )
    watch = Watch(page)

    watch.visit("sign-in", "/login/")

    # A moderator: the queue, "n" claims, the review screen plays this site's video, "a" approves and the next item
    # is swapped in by the page script (no page load); the tag screen's search is an htmx swap.
    moderator = make_user("moderator")
    sign_in(page, moderator.username, screen=True)
    watch.visit("review queue", "/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("() => window.reviewState && window.reviewState().ready")
    assert _video_plays(page) > 2.5
    watch.look("review screen")
    page.keyboard.press("a")
    page.wait_for_selector(f'#review-screen[data-task="{second.pk}"]')
    page.wait_for_function("() => window.reviewState().pending === 0")
    assert list(Review.objects.values_list("task_id", "verdict")) == [(first.pk, "approve")]
    watch.look("review next swapped in")

    assert review_claim_next(user=moderator, queue=tagging.queue) == tagging
    watch.visit("tag screen", reverse("moderation:tag_task", args=[tagging.pk]) + f"?set={tag_set_default().slug}")
    page.keyboard.press("/")  # the search's key
    page.keyboard.type("美妆")
    page.locator("[data-tag-results] li", has_text="美妆").first.wait_for()  # htmx swapped the server's answer in
    watch.look("tag screen search")

    pair = _pair_with_media(tmp_path, copy_file=True, original_file=True)
    assert pair_claim_next(user=moderator) == pair
    watch.visit("reproduction pair", reverse("moderation:repro_pair", args=[pair.pk]))
    for side in ("left", "right"):  # both players load their files
        assert page.locator(f"video[data-pair-{side}]").evaluate(
            "v => v.readyState >= 1 || new Promise((ok) => v.addEventListener('loadedmetadata', () => ok(true)))"
        )
    watch.look("reproduction pair", shot=False)

    # A policy editor: the list, the structured editor, a draft's impact preview (htmx, with its indicator).
    page.context.clear_cookies()
    sign_in(page, make_user("policy_editor").username, screen=True)
    watch.visit("policies", reverse("moderation:policy_list"))
    watch.visit("policy editor", reverse("moderation:policy_edit", args=[policy_version.policy_id]))
    watch.visit("policy draft", reverse("moderation:policy_version", args=[draft.pk]))
    busy = page.locator("#impact-busy")
    assert busy.evaluate("e => getComputedStyle(e).opacity") == "0"  # htmx's indicator rules, from workbench.css
    page.get_by_role("button", name="Preview impact").click()
    page.wait_for_function("() => document.getElementById('impact-result').textContent.trim().length > 0")
    watch.look("policy draft impact")

    # A labeler: the CoT corrections and their screen, Tag2CoT.
    page.context.clear_cookies()
    sign_in(page, make_user("labeler").username, screen=True)
    watch.visit("corrections", reverse("annotation:correction_list"))
    watch.visit("cot correction", reverse("annotation:correction_edit", args=[first.decision_id]))
    watch.visit("tag2cot", reverse("annotation:tag2cot_write", args=[tag2cot.pk]))

    # An admin: operations, integrations, cascade, training, Django's admin, the API docs (Swagger UI's script).
    page.context.clear_cookies()
    sign_in(page, make_user("admin", is_staff=True, is_superuser=True).username, screen=True)
    for name, url in {
        "operations": reverse("moderation:ops_dashboard"),
        "failed decisions": reverse("moderation:ops_missing_decisions"),
        "integrations": reverse("moderation:integration_list"),
        "cascade": reverse("moderation:cascade"),
        "training": reverse("training:job_list"),
        "tag ranker": reverse("moderation:tag_ranker"),
        "tag vocabulary": reverse("moderation:tag_vocabulary"),
        "tag curation": reverse("moderation:tag_curation"),
        # DRF's browsable API: its code style (an inline <style>) and its menus' style attributes were refused.
        "browsable api": "/api/decisions/",
        "browsable api video": f"/api/videos/{second.decision.video_id}/",
        "django admin": "/admin/",
        "django admin users": "/admin/auth/user/",
    }.items():
        watch.visit(name, url)
        if name == "operations":  # its charts' legends (colour swatches, no style attribute) are below the fold
            page.screenshot(path=str(shots_dir() / "csp-operations-full.png"), full_page=True)
        if name == "browsable api video":  # its Extra Actions menu is placed by api_browsable.css, not inline
            assert page.locator("[data-api-aside]").first.evaluate("e => getComputedStyle(e).float") == "right"
    assert (
        page.locator("div.breadcrumbs a").first.evaluate("a => getComputedStyle(a).textDecorationLine") == "underline"
    )
    page.goto("/api/docs/")
    page.wait_for_selector("#swagger-ui .opblock-summary")  # its settings script ran: the operations are drawn
    page.locator("#swagger-ui .opblock-get .opblock-summary-control").first.click()
    page.wait_for_selector("#swagger-ui .opblock.is-open .opblock-body")
    watch.look("api docs")

    assert watch.problems == {}


@pytest.mark.django_db(transaction=True)
def test_with_object_storage_the_player_and_keyframes_load_from_the_stores_origin(
    s3_media, page, make_user, policy_version, tmp_path
):  # type: ignore[no-untyped-def]
    """The media view redirects the player and the keyframe strip to presigned URLs on the store (another origin):
    the policy allows exactly that origin, so both load and nothing is reported."""
    from moderation.media.models import Keyframe
    from moderation.review.services import review_claim_next
    from workbench import storage

    name = storage.store_file(_clip(tmp_path / "clip.mp4"), "videos/2026/12/csp-clip.mp4")
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file=name)
    video = task.decision.video
    for i in range(2):
        frame = storage.store_file(_jpeg(tmp_path / f"{i}.jpg", 60 * i), f"keyframes/{video.pk}/00000{i}.jpg")
        Keyframe.objects.create(video=video, index=i, timestamp=i, image=frame, width=64, height=36)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator) == task
    watch = Watch(page)
    sign_in(page, moderator.username, screen=True)

    watch.visit("review screen object storage", f"/review/{task.pk}/")
    assert _video_plays(page) > 2.5
    page.wait_for_function("() => [...document.querySelectorAll('#player .strip img')].every(i => i.complete)")
    assert page.evaluate("[...document.querySelectorAll('#player .strip img')].map(i => i.naturalWidth > 0)") == [
        True,
        True,
    ]
    watch.look("review screen object storage")
    assert watch.problems == {}
