"""Two screens of the prompt-fitting work, in Chromium at 1440x900 (``SHOTS_DIR`` set: screenshots saved there):
the review screen says when the model read a shortened text, next to its reasoning; a failed evaluation says
why (a rubric too long for the model) and is started again under its own policy version, the page saying
that a newer one is active."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from moderation.inference.services import model_version_register
from moderation.labels.models import ItemLabel
from moderation.models import PolicyVersion
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_integrations_browser import _shot
from tests.browser.test_review_browser import _task
from tests.factories import PolicyVersionFactory, VideoFactory
from training.models import EvaluationRun

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]

RUBRIC_ERROR = (
    "The policy's rubric is 5,210 tokens; model Qwen/Qwen2.5-VL-3B-Instruct reads 4,096 (3,584 once 512 are kept "
    "for its answer), so no item's content fits beside it. Shorten the policy version's rubric (fewer labels, "
    "keywords or criteria) or use a model that reads a longer context."
)


@pytest.mark.django_db(transaction=True)
def test_the_review_screen_says_the_model_read_a_shortened_text(page, make_user, policy_version):
    task = _task(
        policy_version,
        decision__prompt_cut_tokens=2340,
        decision__video__title="A whole hour of live-stream selling",
        decision__backend="transformers",
    )
    sign_in(page, make_user("moderator").username)
    page.set_viewport_size({"width": 1440, "height": 900})

    page.goto("/review/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/review/{task.pk}/")
    note = page.locator("#prompt-cut-note")
    assert note.is_visible()
    assert note.inner_text().startswith("The model read a shortened text: 2,340 tokens of the transcript were left out")
    _shot(page, "review-model-read-a-shortened-text")


@pytest.mark.django_db(transaction=True)
def test_a_failed_evaluation_says_why_and_starts_again_under_its_own_policy_version(page, make_user, policy_version):
    ItemLabel.objects.create(video=VideoFactory(title="Noodles"), label="正向", source=ItemLabel.Source.REVIEW)
    run = EvaluationRun.objects.create(
        model_version=model_version_register(name="qwen-vl-3b", backend="evidence_baseline"),
        policy_version=policy_version,
        eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.FAILED,
        n_items=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        error=RUBRIC_ERROR,
    )
    PolicyVersion.objects.filter(pk=policy_version.pk).update(is_active=False)
    newer = PolicyVersionFactory(policy=policy_version.policy, number=policy_version.number + 1)
    sign_in(page, make_user("admin").username, screen=True)

    page.goto(f"/training/evaluations/{run.pk}/")
    assert page.locator("#evaluation-error").inner_text() == RUBRIC_ERROR
    assert f"not the active one ({newer})" in page.locator("#evaluation-restart").inner_text()
    _shot(page, "evaluation-failed-rubric-too-long-restart-same-version")

    with page.expect_navigation():
        page.get_by_role("button", name="Start this evaluation again").click()
    again = EvaluationRun.objects.exclude(pk=run.pk).get()
    assert again.policy_version_id == policy_version.pk and again.eval_set_key == run.eval_set_key


@pytest.mark.django_db(transaction=True)
def test_the_registry_counts_the_items_a_shadow_candidate_could_not_decide_and_says_why(
    page, make_user, policy_version
):
    from tests.factories import DecisionFactory
    from training.models import ShadowDecision
    from training.release import shadow_start

    candidate = model_version_register(name="qwen-vl-3b-sft", backend="transformers", base_model="Qwen/Qwen2.5-VL-3B")
    shadow_start(model_version=candidate, by=None)
    for i in range(5):
        decision = DecisionFactory(policy_version=policy_version, label="正向", video__title=f"Item {i}")
        if i < 3:
            ShadowDecision.objects.create(decision=decision, model_version=candidate, label="正向", agrees=i < 2)
        else:
            ShadowDecision.objects.create(decision=decision, model_version=candidate, error=RUBRIC_ERROR)
    sign_in(page, make_user("admin").username, screen=True)

    page.goto("/training/models/")
    cell = page.locator('tr[data-version="qwen-vl-3b-sft"] .shadow-failed')
    assert cell.is_visible()
    assert cell.inner_text() == f"2 items it could not decide; latest: {RUBRIC_ERROR}"
    assert "2/3 (0.667)" in page.locator('tr[data-version="qwen-vl-3b-sft"]').inner_text()
    _shot(page, "registry-shadow-candidate-could-not-decide")
