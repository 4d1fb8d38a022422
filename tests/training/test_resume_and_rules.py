"""A job whose worker died resumes from its last checkpoint; "retrain when" rules fire once per trigger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import DecisionFactory, ReviewFactory, ReviewTaskFactory
from training import services
from training.models import PreferenceDataset, RetrainRule, TrainingJob
from training.retrain import retrain_rules_evaluate
from training.runners import common
from training.runners.common import latest_checkpoint
from training.services import preference_dataset_build, training_job_start
from training.tasks import evaluate_retrain_rules, run_training_job

pytestmark = pytest.mark.django_db


class WorkerDied(BaseException):
    """Stands in for the worker process being killed: not an Exception, so nothing marks the job failed."""


@pytest.mark.integration
def test_a_job_whose_worker_died_resumes_from_its_last_checkpoint(training_dirs, override_review, monkeypatch):
    monkeypatch.setattr(common, "PROGRESS_FLUSH_SECONDS", 0.0)  # report every step, so it can die at step 3
    dataset = preference_dataset_build(created_by=None)
    job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4, "save_steps": 2})
    real_progress = services.training_job_progress
    reported: list[int] = []

    def dies_at_step_3(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["step"] == 3:
            raise WorkerDied
        return real_progress(**kwargs)

    monkeypatch.setattr(services, "training_job_progress", dies_at_step_3)
    with pytest.raises(WorkerDied):
        run_training_job(job.pk)
    job.refresh_from_db()
    assert job.status == "running" and job.step == 2
    assert latest_checkpoint(job.output_dir)[1] == 2  # type: ignore[index]

    # The heartbeat goes stale; the reaper puts the job back on the queue; a worker picks it up.
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=30))
    assert services.training_jobs_reap_stale() == [job.pk]

    def records(**kwargs):  # type: ignore[no-untyped-def]
        reported.append(kwargs["step"])
        return real_progress(**kwargs)

    monkeypatch.setattr(services, "training_job_progress", records)
    run_training_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.resumed_from_step == 2 and job.attempts == 2
    assert reported[0] == 2 and 1 not in reported  # the trainer restarted at global step 2, not 0
    assert [h["step"] for h in job.history] == [1, 2, 3, 4]
    assert "resuming from checkpoint-2" in job.log_tail
    assert (Path(job.output_dir) / "adapter" / "adapter_config.json").exists()
    # No checkpoint at the last step (transformers writes one whatever save_steps says): the adapter is
    # saved right after, so checkpoint-4 would only cost its optimizer and RNG state writes.
    assert latest_checkpoint(job.output_dir)[1] == 2  # type: ignore[index]


def _override(policy_version):  # type: ignore[no-untyped-def]
    decision = DecisionFactory(policy_version=policy_version)
    return ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision)


def test_new_pairs_rule_starts_one_job_per_trigger(training_dirs, policy_version):
    rule = RetrainRule.objects.create(
        name="weekly DPO", kind="dpo", condition="new_pairs", threshold=2, params={"max_steps": 3}
    )
    _override(policy_version)
    assert evaluate_retrain_rules() == []  # 1 < 2

    _override(policy_version)
    [job_id] = evaluate_retrain_rules()
    assert retrain_rules_evaluate() == []  # the same trigger never starts a second job

    job = TrainingJob.objects.get(pk=job_id)
    rule.refresh_from_db()
    assert job.kind == "dpo" and job.params["max_steps"] == 3 and job.dataset.kind == PreferenceDataset.Kind.DPO
    assert rule.last_job_id == job_id and "2 new disagreements" in rule.last_trigger
    assert PreferenceDataset.objects.count() == 1

    _override(policy_version)
    _override(policy_version)
    assert len(retrain_rules_evaluate()) == 1  # two more: a new trigger


def test_disagreement_rate_rule_and_disabled_rules(training_dirs, policy_version):
    RetrainRule.objects.create(name="off", condition="disagreement_rate", threshold=0.1, min_reviews=1, enabled=False)
    rate = RetrainRule.objects.create(name="rate", condition="disagreement_rate", threshold=0.5, min_reviews=3)
    approved = DecisionFactory(policy_version=policy_version)
    ReviewFactory(task=ReviewTaskFactory(decision=approved), decision=approved, verdict="approve", label="正向")
    _override(policy_version)
    assert retrain_rules_evaluate() == []  # 2 reviews < min_reviews

    _override(policy_version)  # 2 of 3 overrides: 0.67 > 0.5
    [job_id] = retrain_rules_evaluate()
    rate.refresh_from_db()
    assert rate.last_job_id == job_id and "disagreement rate 0.67 over 3 reviews" in rate.last_trigger
    assert TrainingJob.objects.count() == 1


def test_a_rule_without_data_records_why(training_dirs, policy_version):
    rule = RetrainRule.objects.create(name="sft", kind="sft", condition="new_pairs", threshold=1)
    _override(policy_version)  # an override makes DPO pairs, not SFT records
    assert retrain_rules_evaluate() == []
    rule.refresh_from_db()
    assert "No SFT data yet" in rule.last_error and rule.last_job is None


def test_a_rule_firing_while_the_gpu_queues_are_full_builds_no_dataset_it_throws_away(
    training_dirs, policy_version, settings
):
    """The rule built its dataset snapshot (train.jsonl written and published) before the job's start was refused
    past MAX_QUEUED_GPU_JOBS; the rollback took the row, not the files, and the rule, not fired, tried again at every
    beat tick (5 min): one orphaned snapshot per rule per tick while the GPU queues stayed full."""
    settings.MAX_QUEUED_GPU_JOBS = 1
    _override(policy_version)
    training_job_start(dataset=preference_dataset_build(created_by=None), created_by=None)  # the one slot, queued
    datasets = services.datasets_dir()
    before = sorted(p.name for p in datasets.iterdir())
    rule = RetrainRule.objects.create(name="weekly DPO", kind="dpo", condition="new_pairs", threshold=1)
    _override(policy_version)

    assert retrain_rules_evaluate() == [] and retrain_rules_evaluate() == []

    rule.refresh_from_db()
    assert "GPU queues are full" in rule.last_error and rule.last_job_id is None and not rule.last_trigger
    assert sorted(p.name for p in datasets.iterdir()) == before  # no snapshot written for nothing
    assert PreferenceDataset.objects.count() == 1
    # A slot free again: the same trigger fires.
    TrainingJob.objects.update(status=TrainingJob.Status.CANCELLED)
    assert len(retrain_rules_evaluate()) == 1
