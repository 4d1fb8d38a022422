"""An admin pressing "Start the training job" (or "Start evaluation") twice, in two tabs, or at the same instant as
a colleague: one job, one run, not two that train or measure the same thing on the one GPU."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from moderation.inference.services import model_version_register
from moderation.labels.models import ItemLabel
from tests.factories import DecidedVideoFactory
from tests.races import race
from training.evaluation import evaluation_start
from training.models import EvaluationRun, TrainingJob
from training.services import training_job_start

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_starts_of_the_same_job_at_once_make_one_job(dataset):
    """The second start waits for the first on the dataset's row and finds its job. Before, each made a job."""
    raced = race(
        lambda: training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4}),
        lambda: training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4}),
    )

    assert raced.second_waited
    assert isinstance(raced.first, TrainingJob) and isinstance(raced.second, TrainingJob)
    assert raced.second.pk == raced.first.pk
    assert TrainingJob.objects.count() == 1


def test_other_settings_or_a_finished_job_start_a_new_one(dataset):
    first = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4})
    other = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 8})
    assert other.pk != first.pk
    TrainingJob.objects.filter(pk=first.pk).update(status=TrainingJob.Status.SUCCEEDED)
    again = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4})
    assert again.pk not in (first.pk, other.pk)


def test_the_start_button_pressed_twice_says_the_job_is_already_queued(dataset, make_user):
    client = Client()
    client.force_login(make_user("admin"))
    form = {"dataset": dataset.pk, "kind": "dpo", "max_steps": 4}

    first = client.post("/training/jobs/start/", form)
    second = client.post("/training/jobs/start/", form, follow=True)

    assert first.status_code == 302 and TrainingJob.objects.count() == 1
    job = TrainingJob.objects.get()
    assert second.redirect_chain[-1][0] == f"/training/jobs/{job.pk}/"
    assert f"Job {job.pk} with these settings on “{dataset.name}” was already queued" in second.content.decode()


def test_two_starts_of_the_same_evaluation_at_once_make_one_run(policy_version):
    for label in ("正向", "引导私下交易"):
        video = DecidedVideoFactory(file="")
        ItemLabel.objects.create(
            video=video, label=label, source=ItemLabel.Source.REVIEW, policy_version=policy_version
        )
    version = model_version_register(name="dpo-job", backend="evidence_baseline")
    admin = User.objects.create(username="evaluator")

    raced = race(
        lambda: evaluation_start(model_version=version, created_by=admin, policy_version=policy_version),
        lambda: evaluation_start(model_version=version, created_by=admin, policy_version=policy_version),
    )

    assert raced.second_waited
    assert isinstance(raced.second, EvaluationRun) and raced.second.pk == raced.first.pk
    assert EvaluationRun.objects.count() == 1
