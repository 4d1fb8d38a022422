"""A cap on GPU jobs queued and not started (MAX_QUEUED_GPU_JOBS): training jobs (train queue) and evaluations (infer
queue) counted from their rows. Nothing stopped an admin (or a retrain rule, or a script clicking the form) queueing
hundreds for the one GPU. Past the cap a start is refused with a message on the form (429), recorded in the audit
log, and two starts at once when one slot is left do not both pass."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from moderation.inference.services import model_version_register
from moderation.review.models import AuditEvent
from tests.races import race
from training.errors import GpuQueueFull
from training.evaluation import evaluation_start
from training.models import EvaluationRun, TrainingJob
from training.services import training_job_start


def _refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="training.gpu_queue_full").order_by("pk"))


@pytest.mark.django_db
def test_past_the_cap_jobs_and_evaluations_are_refused_and_the_refusal_recorded(
    dataset, gold_model, policy_version, settings
):
    settings.MAX_QUEUED_GPU_JOBS = 2
    admin = User.objects.create(username="launcher")
    first = training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 4})
    evaluation_start(model_version=gold_model, created_by=admin, policy_version=policy_version)

    with pytest.raises(GpuQueueFull, match=r"The GPU queues are full: 2 jobs .* MAX_QUEUED_GPU_JOBS \(2\)"):
        training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 8})
    other = model_version_register(name="capped-other", backend="evidence_baseline")
    with pytest.raises(GpuQueueFull, match="This evaluation was not queued"):
        evaluation_start(model_version=other, created_by=admin, policy_version=policy_version)
    assert TrainingJob.objects.count() == 1 and EvaluationRun.objects.count() == 1
    refusals = _refusals()
    assert [(e.actor_id, e.payload["refused"], e.payload["queued"], e.payload["limit"]) for e in refusals] == [
        (admin.pk, "training job", 2, 2),
        (admin.pk, "evaluation", 2, 2),
    ]
    # Asking again for the job already queued adds nothing: it is returned, not refused.
    assert training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 4}).pk == first.pk
    # A job that started frees its slot.
    TrainingJob.objects.filter(pk=first.pk).update(status=TrainingJob.Status.RUNNING)
    assert training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 8}).pk != first.pk


@pytest.mark.django_db
def test_the_forms_say_the_gpu_queues_are_full_with_a_429(dataset, gold_model, policy_version, settings, make_user):
    settings.MAX_QUEUED_GPU_JOBS = 1
    client = Client()
    admin = make_user("admin")
    client.force_login(admin)
    started = client.post(reverse("training:job_start"), {"dataset": dataset.pk, "kind": "dpo", "max_steps": 4})
    assert started.status_code == 302

    refused = client.post(reverse("training:job_start"), {"dataset": dataset.pk, "kind": "dpo", "max_steps": 8})
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "The GPU queues are full: 1 job (training jobs and evaluations) is queued" in page
    assert "This training job was not queued" in page
    evaluation = client.post(reverse("training:evaluation_start"), {"model_version": gold_model.pk, "eval_set": "gold"})
    assert evaluation.status_code == 429 and "This evaluation was not queued" in evaluation.content.decode()
    assert TrainingJob.objects.count() == 1 and not EvaluationRun.objects.exists()
    assert [e.actor_id for e in _refusals()] == [admin.pk, admin.pk]


@pytest.mark.django_db(transaction=True)
def test_two_starts_at_once_for_the_last_slot_do_not_both_pass(dataset, gold_model, policy_version, settings):
    """A training job and an evaluation lock different rows (the dataset, the model), so nothing but the cap's own
    lock orders them: without it both counted one queued job under a cap of 2 and both were queued."""
    settings.MAX_QUEUED_GPU_JOBS = 2
    training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4})

    raced = race(
        lambda: training_job_start(dataset=dataset, created_by=None, params={"max_steps": 8}),
        lambda: evaluation_start(model_version=gold_model, created_by=None, policy_version=policy_version),
    )

    assert isinstance(raced.first, TrainingJob), raced.first
    assert isinstance(raced.second, GpuQueueFull), raced.second
    assert raced.second_waited
    assert TrainingJob.objects.count() == 2 and not EvaluationRun.objects.exists()
    assert [e.payload["refused"] for e in _refusals()] == ["evaluation"]


@pytest.mark.django_db
def test_a_shadow_deployment_is_not_started_while_the_gpu_queues_are_full(
    dataset, gold_model, policy_version, settings, make_user
):
    """Shadow mode adds a decision on the infer queue to every live one from its start: it was started whatever the GPU
    queues held. Now refused by the same service with the same message (saying "not started": it queues no job of
    its own) and the same audit record; once a queued job starts, it starts."""
    from training.models import ShadowDeployment

    settings.MAX_QUEUED_GPU_JOBS = 1
    admin = make_user("admin")
    queued = training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 4})
    client = Client()
    client.force_login(admin)
    url = reverse("training:model_shadow", args=[gold_model.pk])

    refused = client.post(url, {"action": "start"}, follow=True)
    page = refused.content.decode()
    assert "The GPU queues are full: 1 job (training jobs and evaluations) is queued and not started yet" in page
    assert "This shadow deployment was not started: wait until queued ones start" in page
    assert not ShadowDeployment.objects.exists()
    assert [(e.actor_id, e.payload["refused"]) for e in _refusals()] == [(admin.pk, "shadow deployment")]

    TrainingJob.objects.filter(pk=queued.pk).update(status=TrainingJob.Status.RUNNING)
    started = client.post(url, {"action": "start"}, follow=True)
    assert "now decides live items in shadow" in started.content.decode()
    assert ShadowDeployment.objects.filter(model_version=gold_model, is_active=True).exists()
    # Started already, with the queues full again: that is what it is told, and no refusal is recorded.
    training_job_start(dataset=dataset, created_by=admin, params={"max_steps": 8})
    again = client.post(url, {"action": "start"}, follow=True).content.decode()
    assert "is already in shadow mode" in again and "GPU queues are full" not in again
    assert len(_refusals()) == 1
