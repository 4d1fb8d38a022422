"""Small problems a walkthrough found, looked at in Chromium at 1440x900 (screenshots in /work/shots/<worktree>/):
a mirrored pair's frame similarity, the CoT evidence's time, the cascade retrain refusal's reload, the training job
page's message and the tag ranker's retrain."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_review_browser import _task

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_a_retrain_of_the_tag_ranker_is_followed_until_its_result_shows(page, make_user):
    """It said "reload in a few seconds"; the page now follows the run in its table and shows the outcome by itself."""
    from moderation.tagging.models import TagRankerTraining
    from moderation.tagging.services import tag_ranker_training_run

    sign_in(page, make_user("admin").username, screen=True)
    page.goto(reverse("moderation:tag_ranker"))
    with page.expect_navigation():
        page.click("button[data-retrain]")
    run = TagRankerTraining.objects.get()
    queued = page.locator(f'[data-run="{run.pk}"][data-run-status="queued"]')
    assert queued.count() == 1
    assert "waiting for a worker" in page.locator(f'[data-run-detail="{run.pk}"]').inner_text()
    page.screenshot(path=str(shots_dir() / "ranker-retrain-running.png"))
    tag_ranker_training_run(run_id=run.pk)  # the worker's part: no events yet, so skipped
    done = page.locator(f'[data-run="{run.pk}"][data-run-status="skipped"]')
    done.wait_for(timeout=10_000)  # no reload by the user: the polled table sees it and the page refreshes
    assert "the learned ranker needs 20" in page.locator(f'[data-run-detail="{run.pk}"]').inner_text()
    assert page.locator('[data-run-status="queued"]').count() == 0  # nothing says "queued" once it ended
    page.screenshot(path=str(shots_dir() / "ranker-retrain-done.png"))


@pytest.mark.django_db(transaction=True)
def test_a_refused_cascade_retrain_is_not_sent_again_by_a_reload(page, make_user, settings):
    from moderation.inference.cascade_models import CascadeTraining

    # The button is off while there are too few labels: the refusal here is the typed target's.
    settings.CASCADE_MIN_TRAIN_LABELS = 0
    sign_in(page, make_user("admin").username, screen=True)
    page.goto(reverse("moderation:cascade"))
    page.fill("#train-form input[name=name]", "weekly")
    page.fill("#train-form input[name=target_accuracy]", "0.3")
    with page.expect_navigation():
        page.click("#train-form button[type=submit]")
    assert page.url.endswith(reverse("moderation:cascade"))  # not /cascade/train/
    assert "“0.3” is not" in page.locator("#train-error").inner_text()
    assert page.locator("#train-form input[name=target_accuracy]").input_value() == "0.3"
    page.screenshot(path=str(shots_dir() / "cascade-retrain-refused.png"))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method))
    page.reload()  # no "resend the form?": the page is a GET
    assert sent[:1] == ["GET"] and page.locator("#train-error").count() == 0
    assert not CascadeTraining.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_walked_screens_read_as_a_reviewer_needs(page, make_user, policy_version):
    """A mirrored pair's frame similarity, the CoT evidence's one time and a started job's page, as shown."""
    from moderation.reproduction.models import ReproCandidate
    from tests.factories import DecidedVideoFactory, SegmentFactory
    from training.models import PreferenceDataset, TrainingJob

    page.set_viewport_size({"width": 1440, "height": 900})
    pair = ReproCandidate.objects.create(
        video=DecidedVideoFactory(title="Mirrored re-upload"), original=DecidedVideoFactory(title="Original"),
        score=0.9, retrieval_score=0.9, frame_similarity=0.974, offset=0.0,
        evidence={"alignment": {"offset": 0.0, "scale": 1.0, "mirrored": True, "coverage_copy": 0.9,
                                "coverage_original": 0.9, "matches": []}},
    )  # fmt: skip
    evidence = [
        {"kind": "segment", "ref": 1, "label": "«wechat»", "t": 2.5},
        {"kind": "segment", "ref": 1, "label": "0.0s «加我»", "t": 0.0},  # recorded before: time in the label
        {"kind": "time", "ref": None, "label": "12.0s", "t": 12.0},
    ]
    task = _task(
        policy_version, decision__cot=[{"key": "analysis", "title": "Analysis", "text": "asks", "evidence": evidence}]
    )
    SegmentFactory(video=task.decision.video, index=0, start=2.5, end=4.0, text="add me on wechat")
    sign_in(page, make_user("admin").username)

    page.goto(reverse("moderation:repro_pair", args=[pair.pk]))
    shown = page.locator("#frame-similarity").inner_text()
    assert shown.startswith("0.974") and "mirrored copy" in shown
    page.locator("#scores").screenshot(path=str(shots_dir() / "pair-mirrored-frame-similarity.png"))

    page.goto("/review/")
    with page.expect_navigation():
        page.keyboard.press("n")  # claim it
    assert page.url.endswith(f"/review/{task.pk}/")
    cot = page.locator("#cot").inner_text()
    assert "«wechat» @ 2.5s" in cot and "«加我» @ 0.0s" in cot and "0.0s «" not in cot and "12.0s @" not in cot
    page.locator("#cot").screenshot(path=str(shots_dir() / "review-cot-evidence.png"))

    dataset = PreferenceDataset.objects.create(name="walk", pair_count=1)
    job = TrainingJob.objects.create(dataset=dataset, params={"max_steps": 2}, total_steps=2)
    page.goto(reverse("training:job_detail", args=[job.pk]))
    assert "Waiting for a training worker" in page.locator("#job-state").inner_text()
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.SUCCEEDED, step=2)
    page.locator("#job-state [data-status=succeeded]").wait_for(timeout=10_000)  # the panel follows the job
    assert page.locator("ul.messages").count() == 0
    page.screenshot(path=str(shots_dir() / "training-job-succeeded.png"))
