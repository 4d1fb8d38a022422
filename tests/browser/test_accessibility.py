"""axe-core (vendored under static/vendor/axe-core) on every screen, in Chromium: no moderate, serious or critical
violation (moderate ones were headings that skipped a level and unnamed second navigation landmarks). Plus: the review screen's controls are reached by keyboard and show where the focus is."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import SCREEN, sign_in
from tests.factories import ReviewTaskFactory, SegmentFactory, TagTaskFactory, VideoFactory


def _stale_vlm_task(policy_version):  # type: ignore[no-untyped-def]
    """A review task whose (vLLM) decision's user-feedback stage is stale: the CoT panel offers a re-run."""
    from datetime import timedelta

    from django.utils import timezone

    from moderation.feedback.models import FeedbackAggregate
    from moderation.inference.models import ModelVersion

    version, _ = ModelVersion.objects.get_or_create(name="vlm-a11y", defaults={"backend": "vllm"})
    task = ReviewTaskFactory(
        decision__policy_version=policy_version,
        decision__video__file="",
        decision__model_version=version,
        decision__backend="vllm",
        # More on-screen text than its panel shows: the panel scrolls, and must be reachable by keyboard.
        decision__video__ocr_text="\n".join(f"caption line {n}: limited offer, link in bio" for n in range(30)),
    )
    FeedbackAggregate.objects.create(
        video=task.decision.video, reports=5, views=50, last_event_at=timezone.now() + timedelta(seconds=1)
    )
    return task


# Loaded from the site's static files: a script tag holding its text inline would be refused by the page's
# Content-Security-Policy (workbench/csp.py), as any injected script is.
AXE_URL = "/static/vendor/axe-core/axe.min.js"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.add_script_tag(url=AXE_URL)
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
             .filter((v) => ["moderate", "serious", "critical"].includes(v.impact))
             .map((v) => `${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`)"""
    )
    return list(found)


def _screen_problems(page, screens: dict[str, str]) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Open each screen (it must answer 200) and collect its moderate, serious or critical violations by name, and
    a page wider than the window (a long log line once widened the job screen to 1,972 px)."""
    problems = {}
    for name, url in screens.items():
        response = page.goto(url)
        assert response is not None and response.status == 200, (name, url, response and response.status)
        found = _violations(page)
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if wide > 1:
            found.append(f"the page is {wide} px wider than the window")
        if found:
            problems[name] = found
    return problems


@pytest.mark.django_db(transaction=True)
def test_every_screen_has_no_moderate_or_worse_axe_violation(page, make_user, policy_version):
    from annotation.models import Adjudication, Tag2CotTask
    from moderation.tagging.models import TagProposal, TagProposalSighting

    # Both items' CoT panels offer a re-run (whichever "n" claims first).
    task = _stale_vlm_task(policy_version)
    _stale_vlm_task(policy_version)
    decision, video = task.decision, task.decision.video
    SegmentFactory(video=video, index=0, start=0.5, end=2.0, text="add me on wechat")
    # With its stages to write (the text boxes must be labelled: each was a bare textarea).
    stages = [{"key": "analysis", "title": "Analysis", "text": "", "evidence": []}]
    tag2cot = Tag2CotTask.objects.create(
        video=video, decision=decision, policy_version=policy_version, target_label="正向", stages=stages
    )
    adjudication = Adjudication.objects.create(video=video, decision=decision, kind="reported_pass", reason="r")
    proposal = TagProposal.objects.create(name="露营装备", key="露营装备", video=video, seen_count=1)
    TagProposalSighting.objects.create(proposal=proposal, video=video, phrase="露营装备", model_name="tiny-vlm")
    admin = make_user("admin")
    long_title = VideoFactory(file="", title="标题" + "很长的标题" * 80)
    from training.models import PreferenceDataset

    PreferenceDataset.objects.create(name="x" * 200, kind="sft", created_by=admin)

    anonymous = _violations(page.goto("/login/") and page)
    sign_in(page, admin.username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    screens = {
        "login": "/login/",
        "home": "/",
        "review queue": "/review/",
        "review item": page.url,
        "queue detail": reverse("moderation:queue_detail", args=["default"]),
        "agreement": reverse("moderation:review_agreement"),
        "videos": reverse("moderation:video_list"),
        "video": reverse("moderation:video_detail", args=[video.pk]),
        "reproductions": reverse("moderation:repro_queue"),
        "adjudications": reverse("annotation:adjudication_list"),
        "adjudication": reverse("annotation:adjudication_detail", args=[adjudication.pk]),
        "corrections": reverse("annotation:correction_list"),
        "correction": reverse("annotation:correction_edit", args=[decision.pk]),
        "tag2cot list": reverse("annotation:tag2cot_list"),
        "tag2cot": reverse("annotation:tag2cot_write", args=[tag2cot.pk]),
        "policies": reverse("moderation:policy_list"),
        "policy": reverse("moderation:policy_detail", args=[policy_version.policy_id]),
        "policy edit": reverse("moderation:policy_edit", args=[policy_version.policy_id]),
        "policy version": reverse("moderation:policy_version", args=[policy_version.pk]),
        "cascade": reverse("moderation:cascade"),
        "tag curation": reverse("moderation:tag_curation"),
        "training": reverse("training:job_list"),
        "models": reverse("training:model_list"),
    }
    problems = {"login (signed out)": anonymous} if anonymous else {}
    del screens["login"]  # seen signed out above
    assert {**problems, **_screen_problems(page, screens)} == {}
    # The admin's header is one line at 1440x900 (its sixteen links wrapped to two); the setup links are under
    # "More", opened and closed by keyboard.
    page.set_viewport_size(SCREEN)
    page.goto("/")
    tops = page.evaluate(
        "() => [...document.querySelectorAll('header.topbar nav > a, .nav-more > summary, header.topbar .who')]"
        ".map((a) => Math.round(a.getBoundingClientRect().top))"
    )
    assert max(tops) - min(tops) < 10, tops
    assert not page.locator("header.topbar").get_by_role("link", name="Training").is_visible()
    page.focus(".nav-more > summary")
    page.keyboard.press("Enter")
    page.locator("header.topbar").get_by_role("link", name="Training").wait_for(state="visible")
    assert _violations(page) == []
    page.keyboard.press("Escape")
    page.locator("header.topbar").get_by_role("link", name="Training").wait_for(state="hidden")
    assert page.evaluate("() => document.activeElement.matches('.nav-more > summary')")
    # A 400-character title is three lines of its row in the video list (it was 26), whole in its tooltip.
    page.goto(screens["videos"])
    cell = page.locator(f"a.cell-title[href='{reverse('moderation:video_detail', args=[long_title.pk])}']")
    box = cell.bounding_box()
    assert box is not None and box["height"] < 4 * 14 * 1.45 and cell.get_attribute("title") == long_title.title
    # A 200-character dataset name no longer squeezes its row's other cells ("By" read "adm / in").
    page.goto(screens["training"])
    lines = page.locator("td", has_text=admin.username).first.evaluate(
        "td => { const r = document.createRange(); r.selectNodeContents(td); return r.getClientRects().length; }"
    )
    assert lines == 1, lines
    # A Tag2CoT task not taken yet: its stages are read-only and look it (they were white boxes that ignored typing).
    page.goto(screens["tag2cot"])
    looks = page.eval_on_selector("textarea[readonly]", "t => getComputedStyle(t).backgroundColor")
    writable = page.evaluate(
        """() => { const t = document.createElement("textarea"); document.querySelector("main").append(t);
                   const colour = getComputedStyle(t).backgroundColor; t.remove(); return colour; }"""
    )
    assert looks != writable, looks
    # Taken, every stage must be written: an empty one is pointed at in place, before anything is sent
    # (the server's refusal named one empty stage per round trip, at the top of the page).
    with page.expect_navigation():
        page.click("text=Write this reasoning")
    page.click("text=Save reasoning")
    assert page.evaluate("document.activeElement.id") == "t2c-stage-analysis"
    assert Tag2CotTask.objects.get(pk=tag2cot.pk).status == "open"


@pytest.mark.django_db(transaction=True)
def test_the_review_screen_is_worked_by_keyboard_with_a_visible_focus(page, make_user, policy_version):
    _stale_vlm_task(policy_version)
    sign_in(page, make_user("moderator").username)
    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        info = page.evaluate(
            """() => { const el = document.activeElement; const cs = getComputedStyle(el);
                 return { body: el === document.body, id: el.outerHTML.slice(0, 80),
                          visible: cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0 }; }"""
        )
        if info["body"]:  # past the last control: the tab order wrapped
            break
        assert info["visible"], f"no visible focus on {info['id']}"
        seen.add(info["id"])
    # the decision controls are among what Tab reaches
    assert any('value="approve"' in s for s in seen) and any("data-picker-filter" in s for s in seen)
    assert any("data-rerun" in s for s in seen)  # the stale CoT's re-run


@pytest.mark.django_db(transaction=True)
def test_the_other_screens_have_no_moderate_or_worse_axe_violation(page, make_user, policy_version):
    """The tagging, reproduction, integration, ops, training-job and evaluation screens (the test above covers review, annotation,
    policies and training)."""
    from moderation.integrations.models import OutboxEvent, WebhookDelivery
    from moderation.integrations.services import integration_create
    from moderation.integrations.webhooks import webhook_endpoint_create
    from moderation.reproduction.models import ReproCandidate
    from moderation.reproduction.services import pair_claim_next
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import TagSet
    from moderation.tagging.services import tags_import
    from tests.factories import ModelVersionFactory, PolicyVersionFactory
    from training.models import EvaluationRun, PreferenceDataset, TrainingJob

    tags_import(lines=["美食\t吃货, 做饭", "火锅", "舞蹈\t跳舞"])
    integration, _token = integration_create(name="platform-a11y")
    endpoint, _secret = webhook_endpoint_create(
        integration=integration, url="http://127.0.0.1:9/hook", event_types=["model.promoted"]
    )
    # Long unbroken titles (a 400-character one widened the pair screen to 5,984 px at 1440).
    ReproCandidate.objects.create(
        video=VideoFactory(file="", title="x" * 400), original=VideoFactory(file="", title="y" * 400), score=0.9,
        retrieval_score=0.9, offset=0.0,
        evidence={"alignment": {"offset": 0.0, "scale": 1.0, "mirrored": False, "coverage_copy": 0.8,
                                "coverage_original": 0.5, "matches": [{"t": 0.0, "t_orig": 0.0, "d": 4}]}},
    )  # fmt: skip
    WebhookDelivery.objects.create(
        endpoint=endpoint, event=OutboxEvent.objects.create(type="review.completed", payload={}), status="retrying",
        attempts=6, last_error="Not sent: The host example.com does not resolve ([Errno -2] Name or service not known).",
    )  # fmt: skip
    admin = make_user("admin")
    pair = pair_claim_next(user=admin)
    assert pair is not None
    tag_task = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=admin, queue=tag_task.queue) == tag_task
    job = TrainingJob.objects.create(
        dataset=PreferenceDataset.objects.create(name="a11y pairs"), params={"max_steps": 4}, total_steps=4,
        log_tail="[17:59:30] step 1: " + ", ".join(f"rewards/correctness_reward/mean={n}" for n in range(12)),
    )  # fmt: skip
    # A tag set's name may be 100 characters: its pickers stayed as wide as the name, across the screen.
    TagSet.objects.create(slug="long", name="电商直播带货" + "长" * 94)
    evaluation, other_evaluation = (
        EvaluationRun.objects.create(
            model_version=ModelVersionFactory(name=f"a11y-model-{n}"),
            policy_version=policy_version,
            eval_set_key="a11y",
        )
        for n in (1, 2)
    )
    PolicyVersionFactory(policy=policy_version.policy, is_active=False, status="draft")  # the diff compares two
    ModelVersionFactory(
        name="dpo-job-3", backend="transformers", base_model="/srv/workbench/var/models/tiny-llama",
        adapter_path="/srv/workbench/var/training/jobs/3/adapter",
        metrics={"no_learning_signal": True, "warning": "Every completion of a prompt got the same reward " * 4},
    )  # fmt: skip
    sign_in(page, admin.username)
    screens = {
        "tag queue": reverse("moderation:tag_queue"),
        "tag ranker": reverse("moderation:tag_ranker"),
        "tag vocabulary": reverse("moderation:tag_vocabulary"),
        "reproduction pair": reverse("moderation:repro_pair", args=[pair.pk]),
        "tag task": reverse("moderation:tag_task", args=[tag_task.pk]),
        "training job": reverse("training:job_detail", args=[job.pk]),
        "evaluation": reverse("training:evaluation_detail", args=[evaluation.pk]),
        "evaluation compare": reverse("training:evaluation_compare") + f"?a={evaluation.pk}&b={other_evaluation.pk}",
        "models (evaluations to compare)": reverse("training:model_list"),  # its A/B radios had no label
        "policy diff": reverse("moderation:policy_diff", args=[policy_version.policy_id]),
        "integrations": reverse("moderation:integration_list"),
        "webhook endpoint": reverse("moderation:webhook_endpoint", args=[endpoint.pk]),
        "ops": reverse("moderation:ops_dashboard"),
    }
    assert _screen_problems(page, screens) == {}
    # The delivery log's button and event type are one line each (they read "Redeli / ver", "review.comp / leted").
    page.goto(screens["webhook endpoint"])
    for cell in ("#delivery-log td button", "#delivery-log td:nth-child(2)"):
        lines = page.locator(cell).first.evaluate(
            "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length; }"
        )
        assert lines == 1, (cell, lines)
    # Switching an integration off asks first (an htmx fragment in place, itself without violations), then says so.
    page.goto(screens["integrations"])
    page.click(f"#integration-switch-{integration.pk} button:has-text('Switch off')")
    page.wait_for_selector("text=Yes, switch it off")
    assert _violations(page) == []
    page.click("text=Yes, switch it off")
    page.wait_for_selector(f"#integration-switch-{integration.pk} [role=status]")
    assert "is switched off" in page.inner_text(f"#integration-switch-{integration.pk}")
    integration.refresh_from_db()
    assert not integration.is_active
    # The registry's backend is one line and each path at most two ("transform / ers", paths cut every 9 characters).
    page.goto(screens["models (evaluations to compare)"])
    lines = page.locator("tr", has_text="dpo-job-3").evaluate(
        """tr => [tr.cells[1], ...tr.cells[2].querySelectorAll("code")].map((e) => {
                 const r = document.createRange(); r.selectNodeContents(e); return r.getClientRects().length; })"""
    )
    assert lines[0] == 1 and max(lines[1:]) <= 2, lines
    # A pair's two uploads are compared side by side at the same size (they were the screens' 3:2 columns).
    page.goto(screens["reproduction pair"])
    later, earlier = (page.locator("#pair-players > .grid > div").nth(n).bounding_box() for n in (0, 1))
    assert later and earlier and abs(later["width"] - earlier["width"]) <= 2, (later, earlier)
    for url in (screens["tag queue"], screens["tag task"]):
        page.goto(url)
        picker = page.locator("select[name=set]").bounding_box()
        assert picker is not None and picker["width"] <= 32 * 16 + 1, url  # 32rem
    # The vocabulary rows still save through their per-row form (the inputs join it by their form attribute).
    page.goto(reverse("moderation:tag_vocabulary"))
    page.fill("input[aria-label='aliases of 火锅']", "涮锅")
    with page.expect_navigation():
        page.click("tr:has(input[value='火锅']) button[type=submit]")
    from moderation.tagging.models import Tag

    assert Tag.objects.get(name="火锅").aliases == ["涮锅"]


@pytest.mark.django_db(transaction=True)
def test_the_cascade_dashboard_with_its_curves_has_no_moderate_or_worse_axe_violation(
    page, make_user, settings, tmp_path
):  # type: ignore[no-untyped-def]
    """Walked: the learning curve's grey "arrival order" failed WCAG AA contrast, and the risk–coverage chart had no
    y-axis title (the screen test above sees the dashboard without a stage 1 or a learning curve)."""
    import json
    import os

    from bench._stage1_learning import LearningCurves
    from moderation.inference.kuaimod import kuaimod_import
    from moderation.inference.services import cascade_train
    from tests.factories import PolicyVersionFactory
    from tests.moderation.inference.kuaimod_samples import write_split

    settings.MODELS_DIR = tmp_path / "models"
    settings.MEDIA_ROOT = tmp_path / "media"  # shared artifacts live in media storage
    PolicyVersionFactory()
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    cascade_train(name="stage1", target_accuracy=0.9)
    curves = LearningCurves(
        labels=[40, 60, 80],
        curves={"arrival": [[0.6, 0.7, 0.8]] * 2, "uncertainty": [[0.6, 0.8, 0.8]] * 2},
        n_locked=[10] * 2,
        repetitions=[(0, 0), (0, 1)],
    )
    (tmp_path / "models" / "cascade").mkdir(parents=True)  # where the bench wrote it before: read once
    (tmp_path / "models" / "cascade" / "learning_curve.json").write_text(
        json.dumps({**curves.summary(), "seeds": 2, "locked_folds": 1, "data": "dev.jsonl"}), encoding="utf-8"
    )
    admin = make_user("admin")
    sign_in(page, admin.username, screen=True)
    page.goto(reverse("moderation:cascade"))
    assert page.locator("#learning-curve").count() == 1 and page.locator("#risk-coverage").count() == 1
    assert _violations(page) == []
    assert page.locator("#risk-coverage-y-title").text_content() == "accuracy of the auto-decided items"
    page.locator("#learning-curve").scroll_into_view_if_needed()
    shots = Path(os.environ.get("SHOTS_DIR", tmp_path))
    page.screenshot(path=str(shots / "cascade-curves.png"), full_page=True)


# Found by axe inside Swagger UI's own markup (drf-spectacular-sidecar's swagger-ui-dist), which its bundle draws
# and we do not template; listed in the README ("API docs"). A finding of a rule not listed here fails the test.
SWAGGER_UI_FINDINGS = {
    "nested-interactive": "each operation's summary is a button that holds the copy-path and lock buttons",
    "region": "the title and description block (.information-container) is drawn outside Swagger UI's own <main>",
    "heading-order": "the API's title is an h1 and the tag headings under it are h3 (no h2 between)",
    "landmark-unique": "each opened operation's responses table is a role=region with no name of its own",
}


def _violations_by_place(page) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Each moderate-or-worse violation's rule, impact and whether its nodes lie inside Swagger UI's root."""
    page.add_script_tag(url=AXE_URL)
    return list(
        page.evaluate(
            """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
                 .filter((v) => ["moderate", "serious", "critical"].includes(v.impact))
                 .map((v) => ({ id: v.id, impact: v.impact,
                   nodes: v.nodes.map((n) => ({ target: n.target.join(" "),
                     swagger: !!document.querySelector(n.target[0])?.closest("#swagger-ui .swagger-ui") })) }))"""
        )
    )


@pytest.mark.django_db(transaction=True)
def test_the_api_docs_page_has_no_axe_violation_of_ours(page, make_user):
    """/api/docs/ was drf-spectacular's bare page: no lang, the title "…API" with no site, no main landmark, every
    line of it outside a landmark, method badges and links at 2-3.5:1 contrast. Ours is an English page with its
    title, a header (Swagger UI's title is the h1), and darker badges and links (static/api_docs.css); what axe still finds is inside
    Swagger UI's own markup, each rule listed above."""
    sign_in(page, make_user("labeler").username)
    page.goto("/api/docs/")
    page.wait_for_selector("#swagger-ui .opblock-summary")  # the schema loaded and its operations are drawn
    assert page.title() == "API docs · Review workbench"
    assert page.evaluate("document.documentElement.lang") == "en"
    # One read and one write operation opened: their parameters, bodies and "Try it out" are checked too.
    for method in ("get", "post"):
        page.locator(f"#swagger-ui .opblock-{method} .opblock-summary-control").first.click()
    page.wait_for_selector("#swagger-ui .opblock.is-open .opblock-body")
    found = _violations_by_place(page)
    ours = {v["id"]: [n["target"] for n in v["nodes"] if not n["swagger"]] for v in found}  # type: ignore[union-attr]
    assert {rule: nodes for rule, nodes in ours.items() if nodes} == {}
    theirs = {str(v["id"]) for v in found}
    assert theirs <= set(SWAGGER_UI_FINDINGS), sorted(theirs - set(SWAGGER_UI_FINDINGS))
