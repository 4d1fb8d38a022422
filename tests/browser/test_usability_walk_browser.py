"""Six findings of a walk through the workbench as each role, seen in Chromium at 1440x900 after their fixes: the
publish confirm step (by keyboard), the tag set form's errors all at once, the job's model version link, measures to
three decimals, an unknown Tag2CoT status, and the admin's search boxes for admin-role staff.
(SCREENSHOT_DIR keeps the screenshots.)"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from moderation.policies.models import PolicyVersion
from moderation.policies.services import policy_version_create_draft
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _screen_problems

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR", tmp_path))


def test_publishing_a_draft_asks_first_and_works_by_keyboard(page, make_user, policy_version, tmp_path):
    editor = make_user("policy_editor", username="rubric-editor")
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    taxonomy[0]["tags"][0]["keywords"].append("loan shark")
    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor, notes="Loans")
    sign_in(page, editor.username, screen=True)
    url = f"/policies/versions/{draft.pk}/"
    page.goto(url)

    opener = page.get_by_role("button", name="Publish and make active…")
    opener.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    confirm = page.locator("#publish-confirm")
    title = f"Publish v{draft.number}, replacing v{policy_version.number}?"
    assert confirm.locator("h2").inner_text() == title
    # The step opens focused (autofocus, applied when the browser next renders: waited for, 5 s at most).
    page.wait_for_function("() => document.activeElement.id === 'publish-confirm-title'", timeout=5000)
    assert PolicyVersion.objects.get(pk=draft.pk).status == "draft"  # nothing happened yet
    page.screenshot(path=str(_shots(tmp_path) / "publish-confirm-step.png"))
    assert _screen_problems(page, {"confirm step": f"{url}?confirm=publish"}) == {}

    page.goto(f"{url}?confirm=publish")
    # The browser applies autofocus when it next renders, which can be after the load event: wait for it.
    page.wait_for_function("() => document.activeElement.id === 'publish-confirm-title'", timeout=5000)
    page.keyboard.press("Tab")  # from the heading: the comparison link, then the button
    page.keyboard.press("Tab")
    name = f"Publish v{draft.number}, replacing v{policy_version.number}"
    assert page.evaluate("document.activeElement.textContent") == name
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert f"v{draft.number} is published and active" in page.content()
    assert PolicyVersion.objects.get(pk=draft.pk).is_active
    page.screenshot(path=str(_shots(tmp_path) / "publish-confirmed.png"))


def test_a_tag_set_form_shows_every_problem_beside_its_field(page, make_user, tmp_path):
    from moderation.tagging.services import tag_set_default, tags_import

    tags_import(lines=["萌宠", "美食"])
    tag_set_default()
    editor = make_user("policy_editor", username="tag-editor")
    sign_in(page, editor.username, screen=True)
    page.goto("/tags/vocabulary/")
    page.locator("#new-tag-set").locator("xpath=ancestor::details").locator("summary").click()
    form = page.locator("#new-tag-set")
    form.get_by_label("Short name").fill("ads-safe")
    form.get_by_label("Name", exact=True).fill("Ads safe")
    form.get_by_label("Show from score").fill("0.95")
    form.get_by_label("Pre-select from score").fill("0,9,5")  # "0,9" is read as 0.9 now (workbench.numbers)
    form.get_by_label("Suggestions shown").fill("80")
    form.get_by_label("Tags").fill("萌宠, 不存在")
    with page.expect_navigation():
        form.get_by_role("button", name="Create tag set").click()

    form = page.locator("#new-tag-set")
    assert form.locator(".field-error").count() == 3
    assert "3 problems, each said beside its field." in form.locator("[role=alert]").inner_text()
    assert form.get_by_label("Pre-select from score").input_value() == "0,9,5"  # kept as typed
    assert page.evaluate("document.activeElement.name") == "preselect_threshold"  # the first field to fix
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(_shots(tmp_path) / "tag-set-all-errors.png"))


def test_a_jobs_model_version_opens_on_the_models_screen_at_three_decimals(page, make_user, policy_version, tmp_path):
    from moderation.models import ModelVersion
    from training.models import EvaluationRun, PreferenceDataset, TrainingJob

    admin = make_user("admin", username="ml-admin")
    version = ModelVersion.objects.create(name="sft-job-7", backend=ModelVersion.Backend.EVIDENCE_BASELINE)
    ModelVersion.objects.create(name="another-model", backend=ModelVersion.Backend.EVIDENCE_BASELINE)
    job = TrainingJob.objects.create(
        dataset=PreferenceDataset.objects.create(name="pairs"),
        status=TrainingJob.Status.SUCCEEDED,
        step=2,
        total_steps=2,
        model_version=version,
        history=[{"step": 1, "loss": 0.912345}, {"step": 2, "loss": 0.401234}],
    )
    ModelVersion.objects.filter(pk=version.pk).update(source_job_id=job.pk)
    EvaluationRun.objects.create(
        model_version=version,
        policy_version=policy_version,
        eval_set_key="gold",
        status=EvaluationRun.Status.SUCCEEDED,
        n_items=12,
        metrics={"binary_accuracy": 11 / 12, "strict_accuracy": 2 / 3, "format_validity": 1.0},
    )
    sign_in(page, admin.username, screen=True)
    page.goto(f"/training/jobs/{job.pk}/")
    assert "loss 0.401 – 0.912" in page.locator("#job-progress").inner_text()
    page.screenshot(path=str(_shots(tmp_path) / "job-model-version-link.png"))

    with page.expect_navigation():
        page.get_by_role("link", name="sft-job-7").click()
    assert page.locator("tr[data-version]").count() == 1
    assert "Showing model version sft-job-7 only" in page.locator("#version-filter").inner_text()
    assert "strict 0.667 · format 1.000" in page.locator("tr[data-version]").inner_text()
    page.screenshot(path=str(_shots(tmp_path) / "models-filtered-to-version.png"))
    run = EvaluationRun.objects.get()
    page.goto(f"/training/evaluations/{run.pk}/")
    assert "0.917" in page.locator("#evaluation-result").inner_text()
    page.screenshot(path=str(_shots(tmp_path) / "evaluation-three-decimals.png"))


def test_an_unknown_tag2cot_status_is_said(page, make_user, tmp_path):
    labeler = make_user("labeler", username="cot-writer")
    sign_in(page, labeler.username, screen=True)
    response = page.goto("/annotation/tag2cot/?status=pending")
    assert response is not None and response.status == 400
    assert "There is no Tag2CoT status “pending”: showing every task." in page.locator("#status-problem").inner_text()
    assert page.locator("nav.filters strong").inner_text() == "All"
    page.screenshot(path=str(_shots(tmp_path) / "tag2cot-unknown-status.png"))


def test_admin_role_staff_choose_by_search_in_the_admin(page, make_user, policy_version, tmp_path):
    from django.contrib.auth.models import Permission
    from playwright.sync_api import expect

    from moderation.models import ReviewQueue
    from tests.factories import ReviewTaskFactory

    queues = [ReviewQueue.objects.create(slug=f"ads-{n}", name=f"Ads queue {n}") for n in range(3)]
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queues[0])
    staff = make_user("admin", username="ops-lead", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_reviewtask"))
    sign_in(page, staff.username, screen=True)
    page.goto(f"/admin/moderation/reviewtask/{task.pk}/change/")
    page.locator(".field-queue .select2-selection").click()
    page.locator(".select2-search__field").fill("ads-2")
    # The search answers (a 403 showed "The results could not be loaded."): only the queue typed for.
    expect(page.locator(".select2-results__option")).to_have_text(["Ads queue 2"])
    page.screenshot(path=str(_shots(tmp_path) / "admin-role-search.png"))


def test_taking_a_tag2cot_task_opens_it_on_the_first_blank_stage(page, make_user, policy_version, tmp_path):
    """Walked on the demo data: "Write this reasoning" reloaded the page with its button gone and nothing
    focused (document.activeElement was the body); typing went nowhere and Tab started from the site's menu."""
    from annotation.models import Tag2CotTask
    from moderation.inference.backends import STAGES
    from tests.factories import DecisionFactory

    decision = DecisionFactory(policy_version=policy_version, label="正向")
    # As the evidence baseline drafts one: the extraction and the verdict written, the stages between blank.
    written = {"content_extraction": "Title: soup.", "final_judgment": "label: 引导私下交易"}
    drafted = [{"key": k, "title": t, "text": written.get(k, ""), "evidence": []} for k, t in STAGES]
    task = Tag2CotTask.objects.create(
        video=decision.video, decision=decision, policy_version=policy_version, target_label="引导私下交易",
        stages=drafted,
    )  # fmt: skip
    labeler = make_user("labeler", username="cot-taker")
    sign_in(page, labeler.username, screen=True)
    page.goto(f"/annotation/tag2cot/{task.pk}/")

    with page.expect_navigation():
        page.get_by_role("button", name="Write this reasoning").click()

    # The drafted extraction is kept; the analysis is the first stage left to write.
    page.wait_for_function("() => document.activeElement.id === 't2c-stage-analysis'", timeout=5000)
    page.keyboard.type("The chat app handle is in the title.")
    assert page.locator("#t2c-stage-analysis").input_value() == "The chat app handle is in the title."
    page.screenshot(path=str(_shots(tmp_path) / "tag2cot-taken-focus.png"))


def test_the_admins_breadcrumb_links_are_told_from_their_text_without_colour(page, make_user, tmp_path):
    """axe in Chromium on every admin change list (link-in-text-block, serious): "Home › Moderation › Review
    queues" had its links only in another colour."""
    from tests.browser.test_accessibility import _violations

    admin = make_user("admin", username="admin-crumbs", is_staff=True, is_superuser=True)
    sign_in(page, admin.username, screen=True)

    for url in ("/admin/moderation/reviewqueue/", "/admin/auth/group/"):
        page.goto(url)
        assert page.locator("div.breadcrumbs a").first.evaluate("a => getComputedStyle(a).textDecorationLine") == (
            "underline"
        )
        assert not [v for v in _violations(page) if "link-in-text-block" in v], url
    assert "Django administration" in page.locator("#site-name").inner_text()  # the admin's own header, kept
    page.screenshot(path=str(_shots(tmp_path) / "admin-breadcrumbs.png"))
