"""An evaluation whose worker died, as an admin watches it in Chromium at 1440x900: the running page says the worker
went quiet, turns to "Failed" with the reason by itself when the reaper fails the run, and starts it again.
``SHOTS_DIR`` set: each step's screenshot is saved there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from moderation.inference.services import model_version_register
from moderation.labels.models import ItemLabel
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_integrations_browser import _shot
from tests.factories import VideoFactory
from training.models import EvaluationRun
from training.services import evaluation_runs_reap_stale

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_died_turns_failed_on_the_open_page_and_starts_again(page, make_user, policy_version):
    ItemLabel.objects.create(video=VideoFactory(title="Noodles"), label="正向", source=ItemLabel.Source.REVIEW)
    version = model_version_register(name="dpo-job", backend="evidence_baseline")
    run = EvaluationRun.objects.create(
        model_version=version,
        policy_version=policy_version,
        eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.RUNNING,
        n_items=303,
        n_decided=40,
        started_at=timezone.now() - timedelta(minutes=25),
        heartbeat_at=timezone.now() - timedelta(minutes=4),
    )
    admin = make_user("admin")
    sign_in(page, admin.username, screen=True)

    page.goto(f"/training/evaluations/{run.pk}/")
    progress = page.locator("#evaluation-progress")
    assert "decided 40 of 303 items" in progress.inner_text()
    assert "No word from the worker for 4 min" in page.locator("#evaluation-silent").inner_text()
    _shot(page, "evaluation-running-worker-quiet")

    # Ten minutes without a beat: the reaper (beat, every minute) fails it; the open page follows (htmx poll).
    EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert evaluation_runs_reap_stale() == [run.pk]
    page.wait_for_selector('[data-status="failed"]')
    error = page.locator("#evaluation-error").inner_text()
    assert error.startswith("The worker running this evaluation stopped at 40 of 303 items")
    assert page.locator("#evaluation-progress").count() == 0
    _shot(page, "evaluation-failed-worker-lost")

    with page.expect_navigation():
        page.get_by_role("button", name="Start this evaluation again").click()
    again = EvaluationRun.objects.exclude(pk=run.pk).get()
    assert page.url.endswith(f"/training/evaluations/{again.pk}/") and again.model_version_id == version.pk
    # Its state, in the panel that follows it; no "Evaluation N queued." line that would outlive it.
    assert page.locator('#evaluation-result [data-status="queued"]').count() == 1
    assert "queued." not in page.locator("main").inner_text().split("Waiting for the inference worker")[0]
    _shot(page, "evaluation-started-again")
