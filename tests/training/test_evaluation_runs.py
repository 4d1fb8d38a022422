"""Evaluation runs that stay within memory and never stay "Running" after their worker is gone.

An admin evaluated the DPO job's model (the tiny Llama, transformers backend, context 4096) on a gold
set whose videos carry long transcripts: every prompt went whole to the model, a batch of 8 was padded
to its longest item, the worker grew to 21.8 GB and was killed, and the page said "Running" for ever.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.inference.services import model_version_register
from moderation.labels.models import ItemLabel
from tests.factories import SegmentFactory, VideoFactory
from training.evaluation import _Heartbeat, evaluation_execute, evaluation_start
from training.models import EvaluationRun
from training.tasks import reap_stale_evaluations
from workbench.celery import app
from workbench.queues import TASK_ROUTES, TaskQueue

pytestmark = pytest.mark.django_db

REASON_303 = (
    "The worker running this evaluation stopped at 40 of 303 items (it may have run out of memory or been "
    "restarted; nothing was heard from it for 10 minutes). Start the evaluation again; if it stops again, ask "
    "an administrator to look at the inference worker's log and memory."
)


def _gold_video(title: str, label: str, n_segments: int) -> None:
    video = VideoFactory(title=title)
    for i in range(n_segments):
        SegmentFactory(video=video, index=i, start=2.0 * i, end=2.0 * i + 2, text=f"加我微信私聊价格 说明 part {i}")
    ItemLabel.objects.create(video=video, label=label, source=ItemLabel.Source.REVIEW)


def _running(policy_version, *, minutes_quiet: float, n_decided: int = 40, n_items: int = 303) -> EvaluationRun:  # type: ignore[no-untyped-def]
    version = model_version_register(name="dpo-job", backend="evidence_baseline")
    run = EvaluationRun.objects.create(
        model_version=version,
        policy_version=policy_version,
        eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.RUNNING,
        n_items=n_items,
        n_decided=n_decided,
        started_at=timezone.now() - timedelta(minutes=30),
        heartbeat_at=timezone.now() - timedelta(minutes=minutes_quiet),
    )
    return run


def test_an_evaluation_of_long_transcripts_fits_the_models_context_and_each_prediction_says_if_it_was_cut(
    policy_version, settings
):
    from training.tiny_model import ensure_tiny_base_model

    settings.VLM_MAX_NEW_TOKENS = 8
    _gold_video("A whole hour of live-stream selling", "引导私下交易", 300)  # ~10,000 tokens of transcript
    _gold_video("Noodles", "正向", 2)
    version = model_version_register(name="dpo-job", backend="transformers", base_model=ensure_tiny_base_model())

    run = evaluation_execute(run_id=evaluation_start(model_version=version, created_by=None).pk)

    assert run is not None and run.status == "succeeded", run and run.error
    long, short = sorted(run.predictions, key=lambda p: -p.get("prompt_cut_tokens", 0))
    assert long["prompt_cut_tokens"] > 5000
    assert long["note"] == f"The prompt was cut by {long['prompt_cut_tokens']} tokens to fit the model's context."
    assert "prompt_cut_tokens" not in short and "note" not in short
    assert run.metrics["prompts_cut"] == 1 and run.n_decided == run.n_items == 2
    assert run.heartbeat_at is not None and run.heartbeat_at >= run.started_at


def test_the_reaper_fails_a_running_evaluation_whose_worker_went_quiet_and_says_how_far_it_got(policy_version):
    lost = _running(policy_version, minutes_quiet=11)
    alive = _running(policy_version, minutes_quiet=1)
    loading = _running(policy_version, minutes_quiet=12, n_decided=0, n_items=0)

    assert sorted(reap_stale_evaluations()) == sorted([lost.pk, loading.pk])

    for run in (lost, alive, loading):
        run.refresh_from_db()
    assert lost.status == "failed" and lost.error == REASON_303 and lost.finished_at is not None
    assert alive.status == "running" and alive.error == ""
    assert loading.status == "failed" and "stopped before it had read the evaluation set" in loading.error
    assert reap_stale_evaluations() == []  # a failed run is left alone


def test_the_reaper_runs_on_beat_on_the_default_queue():
    assert TASK_ROUTES["training.tasks.reap_stale_evaluations"] == TaskQueue.DEFAULT
    entries = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert entries["training.tasks.reap_stale_evaluations"] <= 60


def test_a_second_delivery_leaves_a_run_with_a_live_worker_alone_and_a_reaped_run_failed(policy_version):
    alive = _running(policy_version, minutes_quiet=1)
    assert evaluation_execute(run_id=alive.pk) is None
    alive.refresh_from_db()
    assert alive.status == "running" and alive.n_decided == 40

    reaped = _running(policy_version, minutes_quiet=11)
    reap_stale_evaluations()
    assert evaluation_execute(run_id=reaped.pk) is None
    reaped.refresh_from_db()
    assert reaped.status == "failed" and reaped.error == REASON_303


@pytest.mark.django_db(transaction=True)
def test_the_worker_beats_while_the_model_works_on_a_slow_batch(policy_version, settings):
    """A VLM on CPU takes minutes per item: a batch longer than the reaper's patience must not read as a
    dead worker. The beat comes from a thread of the worker process, so it dies with it."""
    settings.EVALUATION_HEARTBEAT_SECONDS = 0.05
    run = _running(policy_version, minutes_quiet=11)
    # While the model works, the beat lands: waited for (its thread opens its own connection first, which a loaded
    # machine can keep past any fixed sleep), not slept on.
    with _Heartbeat(run.pk):
        deadline = time.monotonic() + 30
        while EvaluationRun.objects.get(pk=run.pk).heartbeat_at < timezone.now() - timedelta(minutes=1):
            assert time.monotonic() < deadline, "no heartbeat in 30 s"
            time.sleep(0.02)
    run.refresh_from_db()
    assert timezone.now() - run.heartbeat_at < timedelta(seconds=5)
    assert reap_stale_evaluations() == []


def test_the_page_of_a_reaped_evaluation_says_why_and_starts_it_again(client_as, policy_version):
    run = _running(policy_version, minutes_quiet=11)
    _gold_video("Noodles", "正向", 1)
    reap_stale_evaluations()
    client = client_as("admin")

    page = client.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert 'data-status="failed"' in page and "hx-trigger" not in page
    assert "stopped at 40 of 303 items (it may have run out of memory or been restarted" in page
    assert "40 of 303 items decided · failed" in page and "303 items · finished" not in page
    assert 'id="evaluation-restart"' in page and "Start this evaluation again" in page

    response = client.post(
        reverse("training:evaluation_start"),
        {"model_version": run.model_version_id, "eval_set": run.eval_set, "file_path": run.file_path},
    )
    again = EvaluationRun.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and response.url == reverse("training:evaluation_detail", args=[again.pk])
    assert again.status == "queued" and again.model_version_id == run.model_version_id
    assert again.eval_set_key == run.eval_set_key
    # The run's page says its state and follows it; no "Evaluation N queued." that would stay after it finished.
    shown = client.get(response.url).content.decode()
    assert 'data-status="queued"' in shown and "Waiting for the inference worker to take it." in shown
    assert f"Evaluation {again.pk} queued." not in shown
    EvaluationRun.objects.filter(pk=again.pk).update(status="succeeded", finished_at=timezone.now())
    assert f"Evaluation {again.pk} queued." not in client.get(response.url).content.decode()


def test_starting_a_failed_evaluation_again_keeps_its_policy_version_when_a_newer_one_is_active(
    client_as, policy_version
):
    """The run failed under v1; v2 was published since. "Start this evaluation again" must rerun what
    failed (same set, same version: its scores compare with the failed run's), and say it is not v2."""
    from tests.factories import PolicyVersionFactory

    run = _running(policy_version, minutes_quiet=11)
    _gold_video("Noodles", "正向", 1)
    reap_stale_evaluations()
    type(policy_version).objects.filter(pk=policy_version.pk).update(is_active=False)
    newer = PolicyVersionFactory(policy=policy_version.policy, number=policy_version.number + 1)
    client = client_as("admin")

    page = client.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    form = re.search(r'<form[^>]*id="evaluation-restart".*?</form>', page, re.S)
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["policy_version"] == str(policy_version.pk)
    assert f"under the same policy version ({policy_version})" in form.group(0)
    assert f"not the active one ({newer})" in form.group(0)

    response = client.post(reverse("training:evaluation_start"), fields)
    again = EvaluationRun.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert again.policy_version_id == policy_version.pk and again.eval_set_key == run.eval_set_key

    # The list's own start form names no version: that one still runs under the active version.
    client.post(reverse("training:evaluation_start"), {"model_version": run.model_version_id, "eval_set": "gold"})
    latest = EvaluationRun.objects.order_by("-pk").first()
    assert latest is not None and latest.policy_version_id == newer.pk


def test_a_running_evaluation_whose_worker_is_quiet_says_so_before_it_is_failed(client_as, policy_version):
    run = _running(policy_version, minutes_quiet=4)
    page = client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert "decided 40 of 303 items" in page
    assert "No word from the worker for 4 min: if it stays silent for 10 min, the run is marked failed" in page
    assert "min left at this pace" not in page  # no estimate from a pace that has stopped
    EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    page = client_as("admin").get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert "No word from the worker" not in page


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_was_only_slow_stops_when_its_run_was_failed_and_leaves_the_failure_shown(
    policy_version, settings
):
    """The reaper failed the run while a batch took long; the worker, when it comes back, must not write
    "Succeeded" over the failure the user was shown (nor keep the inference worker busy with it)."""
    import threading

    from training.services import evaluation_runs_reap_stale
    from training.tiny_model import ensure_tiny_base_model

    settings.VLM_MAX_NEW_TOKENS = 48
    for i in range(24):
        _gold_video(f"item {i}", "正向" if i % 2 else "引导私下交易", 2)
    version = model_version_register(name="dpo-job", backend="transformers", base_model=ensure_tiny_base_model())
    run = evaluation_start(model_version=version, created_by=None)
    worker = threading.Thread(target=evaluation_execute, kwargs={"run_id": run.pk})
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while EvaluationRun.objects.get(pk=run.pk).n_decided < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        # As if its last beat were 11 minutes old: the reaper fails it (again if a batch beat in between).
        for _attempt in range(20):
            EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
            if evaluation_runs_reap_stale() == [run.pk]:
                break
    finally:
        worker.join(timeout=300)
    run.refresh_from_db()
    assert run.status == "failed" and re.search(r"stopped at (8|16) of 24 items", run.error), run.error
    assert run.n_decided < 24 and run.metrics == {} and run.predictions == []


def test_an_evaluation_its_solo_worker_was_ended_for_at_the_hard_limit_is_failed_with_the_reason_at_once(
    policy_version,
):
    """What the infer worker's watchdog records before it ends the process (workbench/worker_limits.py): the run
    leaves "running" with the limit that stopped it, not after the reaper's 10 minutes with "stopped responding";
    the message's second delivery then finds it failed."""
    from workbench.worker_limits import _RECORDERS, time_limit_text

    run = _running(policy_version, minutes_quiet=0)
    message = time_limit_text(task_name="training.tasks.run_evaluation", seconds=10800, soft=False)
    _RECORDERS["training.tasks.run_evaluation"]((run.pk,), {}, message)

    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert run.error == (
        "Stopped after 3 hours, the infer workers' time limit (INFER_TASK_TIME_LIMIT_S). The worker was restarted. "
        "Run it again once the limit allows work this long."
    )
    assert evaluation_execute(run_id=run.pk) is None and reap_stale_evaluations() == []


def test_an_evaluation_started_or_queued_under_a_minute_ago_says_so_not_zero_minutes(client_as, policy_version):
    """Walked: a run that had just started read "running since 14:25 (0 minutes)". Under a minute it says so, as
    the app does elsewhere ("under a minute", "just now"); later the elapsed time as before."""
    run = _running(policy_version, minutes_quiet=0)
    client = client_as("admin")
    url = reverse("training:evaluation_detail", args=[run.pk])
    now = timezone.now()
    EvaluationRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(seconds=20))
    page = client.get(url).content.decode()
    assert f"running since {timezone.localtime(now - timedelta(seconds=20)):%H:%M} (under a minute)" in page
    assert "0\xa0minutes" not in page and "0 minutes" not in page
    EvaluationRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(minutes=5))
    assert "(5\xa0minutes)" in client.get(url).content.decode()

    EvaluationRun.objects.filter(pk=run.pk).update(status=EvaluationRun.Status.QUEUED, started_at=None, created_at=now)
    queued = client.get(url).content.decode()
    assert "queued " in queued and "(just now)" in queued and "0\xa0minutes ago" not in queued
