"""\"Retrain when\" rules, evaluated by Celery beat (training.tasks.evaluate_retrain_rules).

Each rule keeps a watermark (``last_fired_at``): only human work after it counts toward the next
trigger, and the watermark moves to the newest counted item when the rule fires, so the same
trigger never starts two jobs — also when two beat ticks overlap (the rule row is locked).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from annotation.models import Adjudication, CotCorrection, Tag2CotTask
from moderation.models import Review
from training.data import ACCEPTABLE_CORRECTION_STATUSES
from training.errors import TrainingError
from training.models import RetrainRule

logger = logging.getLogger(__name__)


def _new_disagreements(since: datetime | None) -> tuple[int, datetime | None]:
    """Human disagreements with the model (the sources of preference pairs) after ``since``."""
    sources = [
        (Review.objects.filter(verdict=Review.Verdict.OVERRIDE), "created_at"),
        (CotCorrection.objects.filter(status__in=ACCEPTABLE_CORRECTION_STATUSES), "updated_at"),
        # A finished Tag2CoT task is a labeler's reasoning towards a label the model missed (an SFT record and a
        # DPO pair, ``training.data``): new ones count as new human work like an accepted correction.
        (Tag2CotTask.objects.filter(status=Tag2CotTask.Status.DONE), "completed_at"),
        (Adjudication.objects.filter(status=Adjudication.Status.DECIDED), "decided_at"),
    ]
    count, latest = 0, None
    for qs, field in sources:
        if since is not None:
            qs = qs.filter(**{f"{field}__gt": since})
        count += qs.count()
        newest = qs.aggregate(m=Max(field))["m"]
        if newest and (latest is None or newest > latest):
            latest = newest
    return count, latest


def rule_trigger(rule: RetrainRule) -> tuple[str, datetime] | None:
    """(trigger description, new watermark) when the rule's condition holds now, else None."""
    if rule.condition == RetrainRule.Condition.NEW_PAIRS:
        count, latest = _new_disagreements(rule.last_fired_at)
        if latest is not None and count >= rule.threshold:
            return f"{count} new disagreements up to {latest.isoformat()}", latest
        return None
    reviews = Review.objects.all()
    if rule.last_fired_at is not None:
        reviews = reviews.filter(created_at__gt=rule.last_fired_at)
    total = reviews.count()
    if total < max(rule.min_reviews, 1):
        return None
    overrides = reviews.filter(verdict=Review.Verdict.OVERRIDE).count()
    rate = overrides / total
    if rate > rule.threshold:
        latest = reviews.aggregate(m=Max("created_at"))["m"]
        return f"disagreement rate {rate:.2f} over {total} reviews up to {latest.isoformat()}", latest
    return None


def retrain_rule_fire(*, rule_id: int) -> int | None:
    """Check one rule under its row lock; build a snapshot and start a job when it triggers."""
    from training.services import gpu_queue_room_check, preference_dataset_build, sft_dataset_build, training_job_start

    with transaction.atomic():
        rule = RetrainRule.objects.select_for_update().get(pk=rule_id)
        if not rule.enabled:
            return None
        trigger = rule_trigger(rule)
        if trigger is None:
            return None
        description, watermark = trigger
        if description == rule.last_trigger:
            return None
        build = sft_dataset_build if rule.kind == "sft" else preference_dataset_build
        try:
            # The GPU queues full: said on the rule before its snapshot is built (the refused start threw it away,
            # its files left behind); the rule tries again at the next tick.
            gpu_queue_room_check(what="training job")
            with transaction.atomic():
                dataset = build(created_by=None, name=f"{rule.name}: {description}"[:200])
                job = training_job_start(
                    dataset=dataset, created_by=None, kind=rule.kind, base_model=rule.base_model, params=rule.params
                )
        except TrainingError as exc:
            rule.last_error = str(exc)
            rule.save(update_fields=["last_error"])
            return None
        rule.last_fired_at = watermark
        rule.last_trigger = description[:200]
        rule.last_job = job
        rule.last_error = ""
        rule.save(update_fields=["last_fired_at", "last_trigger", "last_job", "last_error"])
        logger.info("retrain rule %s fired (%s): job %s", rule.pk, description, job.pk)
        return job.pk


def retrain_rules_evaluate(**_: Any) -> list[int]:
    """Every enabled rule, each in its own transaction; returns the ids of the jobs started."""
    started = []
    for rule_id in RetrainRule.objects.filter(enabled=True).values_list("pk", flat=True):
        job_id = retrain_rule_fire(rule_id=rule_id)
        if job_id is not None:
            started.append(job_id)
    return started
