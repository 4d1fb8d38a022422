"""The one place that names the Celery queues and routes every task to one of them."""

from __future__ import annotations

import enum
from functools import partial
from typing import Any

from django.db import transaction
from kombu import Queue


class TaskQueue(enum.StrEnum):
    DEFAULT = "default"
    MEDIA = "media"  # CPU workers: ffmpeg, faster-whisper, OCR (prefork)
    INFER = "infer"  # GPU workers: VLM inference (pool solo, concurrency 1; limits: workbench/worker_limits.py)
    TRAIN = "train"  # GPU workers: fine-tuning jobs (pool solo, concurrency 1; limits: workbench/worker_limits.py)


# Task name -> queue. Every task of the project must appear here (a test checks it).
TASK_ROUTES: dict[str, TaskQueue] = {
    "moderation.media.tasks.process_video": TaskQueue.MEDIA,
    "moderation.inference.tasks.run_inference": TaskQueue.INFER,
    "moderation.review.tasks.run_queue_decision": TaskQueue.INFER,
    "moderation.inference.tasks.rerun_decision": TaskQueue.INFER,  # a reviewer's re-run: the decision's model
    "moderation.inference.tasks.decide_missing_policies": TaskQueue.INFER,  # the routing repair: a model runs
    "moderation.inference.tasks.purge_kept_verdicts": TaskQueue.DEFAULT,  # beat: one DELETE of stale kept answers
    "moderation.inference.tasks.purge_impact_previews": TaskQueue.DEFAULT,  # beat: one DELETE of unshowable previews
    "moderation.inference.tasks.retrain_cascade": TaskQueue.DEFAULT,  # beat: queues train_cascade when due
    "moderation.inference.tasks.train_cascade": TaskQueue.DEFAULT,  # sklearn on a few thousand items: CPU
    "training.tasks.run_training_job": TaskQueue.TRAIN,
    "training.tasks.reap_stale_jobs": TaskQueue.DEFAULT,
    "training.tasks.reap_stale_evaluations": TaskQueue.DEFAULT,
    "training.tasks.export_dataset": TaskQueue.DEFAULT,
    "training.tasks.evaluate_retrain_rules": TaskQueue.DEFAULT,
    "training.tasks.run_evaluation": TaskQueue.INFER,
    "training.tasks.run_shadow_decision": TaskQueue.INFER,
    "training.tasks.retry_failed_shadow_decisions": TaskQueue.DEFAULT,  # beat: queues the tries that are due, SQL only
    "training.tasks.retry_shadow_decision": TaskQueue.INFER,  # one more try of a failed shadow decision
    "annotation.tasks.evaluate_disagreements": TaskQueue.DEFAULT,
    "annotation.tasks.draft_tag2cot": TaskQueue.INFER,
    "moderation.reproduction.tasks.find_candidates": TaskQueue.MEDIA,
    "moderation.reproduction.tasks.judge_pair": TaskQueue.INFER,
    "moderation.reproduction.tasks.sweep_distinct_vectors": TaskQueue.DEFAULT,  # beat: a batch of keys, SQL only
    "moderation.ops.tasks.prune_routing_rechecks": TaskQueue.DEFAULT,  # beat: one DELETE of checked videos, SQL only
    "moderation.tagging.tasks.embed_tags": TaskQueue.MEDIA,
    "moderation.tagging.tasks.generate_tag_candidates": TaskQueue.MEDIA,
    "moderation.tagging.tasks.recover_tag_tries": TaskQueue.DEFAULT,  # beat: SQL only, queues the tries owed
    "moderation.tagging.tasks.train_tag_ranker": TaskQueue.DEFAULT,
    "moderation.tagging.tasks.import_vocabulary": TaskQueue.DEFAULT,  # a vocabulary file from the screen
    "moderation.tagging.tasks.suggest_vlm_tags": TaskQueue.INFER,  # the serving VLM answers a tag prompt
    "moderation.integrations.tasks.dispatch_outbox_event": TaskQueue.DEFAULT,
    "moderation.integrations.tasks.deliver_webhook": TaskQueue.DEFAULT,
    "moderation.integrations.tasks.sweep_webhooks": TaskQueue.DEFAULT,
    "workbench.tasks.purge_csp_violations": TaskQueue.DEFAULT,  # beat: one DELETE of old days' reports
}

# Long-running tasks: acknowledge after the work is done, and give the message back if the
# worker process dies, so a killed worker's task is redelivered instead of lost.
LONG_TASK_OPTIONS: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}

# One item through a model on the infer queue (a reviewer's re-run): the soft limit raises inside the task
# (recorded as a failure with the reason), the hard one kills it (a solo GPU worker enforces both itself,
# workbench/worker_limits.py, and restarts); the review screen also calls a run with no progress past the hard
# limit plus a margin stalled (DecisionRerun.STALLED_AFTER) and lets the reviewer send it again.
INFER_ITEM_SOFT_TIME_LIMIT_S = 14 * 60
INFER_ITEM_TIME_LIMIT_S = 15 * 60
INFER_ITEM_TASK_OPTIONS: dict[str, Any] = {
    **LONG_TASK_OPTIONS,
    "soft_time_limit": INFER_ITEM_SOFT_TIME_LIMIT_S,
    "time_limit": INFER_ITEM_TIME_LIMIT_S,
}


def enqueue(task: str, *args: Any, robust: bool = False, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task named ``task`` once the current transaction commits (at once outside one), on the
    queue ``TASK_ROUTES`` names for it. The one way the project queues work (a test checks no other is left).

    A name missing from the routing table is refused here, before anything is written. By name, so a
    wing never imports another's tasks module to queue it. ``robust``: a broker error is logged, not
    raised, where a periodic sweep catches up anyway. ``countdown``: run no sooner than this many seconds
    after the commit (retries with backoff).
    """
    queue = TASK_ROUTES.get(task)
    if queue is None:
        raise ValueError(f"Task {task!r} is not routed in workbench.queues.TASK_ROUTES.")
    transaction.on_commit(partial(_send, task, queue, list(args), kwargs, countdown), robust=robust)


def _send(task: str, queue: TaskQueue, args: list[Any], kwargs: dict[str, Any], countdown: float | None = None) -> None:
    from workbench.celery import app

    app.send_task(task, args=args, kwargs=kwargs, queue=queue.value, countdown=countdown)


class QueueTimeLimits:
    """``task_annotations`` giving each task of a queue named in ``settings.TASK_TIME_LIMITS_S`` that queue's soft
    and hard limits (seconds; 0 leaves that one unset), unless the task declares limits of its own (the infer
    items' 14/15 minutes, ``INFER_ITEM_TASK_OPTIONS``): a plain mapping would override those."""

    def annotate(self, task: Any) -> dict[str, int] | None:
        queue = TASK_ROUTES.get(task.name)
        if queue is None or task.soft_time_limit is not None or task.time_limit is not None:
            return None
        return queue_time_limits(queue) or None


def queue_time_limits(queue: TaskQueue) -> dict[str, int]:
    """The queue's configured ``soft_time_limit`` and ``time_limit`` (seconds), those set only."""
    from django.conf import settings

    soft, hard = settings.TASK_TIME_LIMITS_S.get(queue.value, (0, 0))
    return {key: value for key, value in (("soft_time_limit", soft), ("time_limit", hard)) if value > 0}


def unknown_queues_refusal(names: Any) -> str:
    """Why a worker asked to consume ``names`` (its `-Q`) must not start: a name not in ``TaskQueue`` (`-Q infr`), a
    queue nothing is ever routed to, which Celery makes and waits on for good. Empty when all are known."""
    unknown = sorted(str(name) for name in names if str(name) not in {q.value for q in TaskQueue})
    if not unknown:
        return ""
    return (
        f"This worker was asked to consume {', '.join(repr(n) for n in unknown)}, not a queue of the workbench (one of: "
        f"{', '.join(q.value for q in TaskQueue)}): no task is ever routed there. Fix its -Q (e.g. in compose.yaml)."
    )


def configure_routing(app: Any) -> None:
    app.conf.task_queues = [Queue(q.value) for q in TaskQueue]
    app.conf.task_annotations = [QueueTimeLimits()]
    app.conf.task_default_queue = TaskQueue.DEFAULT.value
    app.conf.task_routes = {name: {"queue": q.value} for name, q in TASK_ROUTES.items()}
    app.conf.beat_schedule = {
        "reap-stale-training-jobs": {"task": "training.tasks.reap_stale_jobs", "schedule": 60.0},
        "reap-stale-evaluations": {"task": "training.tasks.reap_stale_evaluations", "schedule": 60.0},
        "evaluate-retrain-rules": {"task": "training.tasks.evaluate_retrain_rules", "schedule": 5 * 60.0},
        # Failed shadow decisions whose next try is due (backoff from SHADOW_RETRY_BASE_SECONDS).
        "retry-failed-shadow-decisions": {"task": "training.tasks.retry_failed_shadow_decisions", "schedule": 60.0},
        # Catches feedback whose per-batch check was lost, and rules an admin changed.
        "evaluate-disagreements": {"task": "annotation.tasks.evaluate_disagreements", "schedule": 15 * 60.0},
        # Tag tasks whose worker was lost (killed at a hard time limit, out of memory): tried again, or given up.
        "recover-tag-tries": {"task": "moderation.tagging.tasks.recover_tag_tries", "schedule": 60.0},
        # The tag ranker and per-tag classifiers learn from the day's reviewer events.
        "train-tag-ranker": {"task": "moderation.tagging.tasks.train_tag_ranker", "schedule": 60 * 60.0},
        # Stage 1 learns from new reviews (CASCADE_RETRAIN_AFTER_LABELS of them since its last training).
        "retrain-cascade": {"task": "moderation.inference.tasks.retrain_cascade", "schedule": 10 * 60.0},
        # The outbox's safety net: events and deliveries whose queued message was lost.
        "sweep-webhooks": {"task": "moderation.integrations.tasks.sweep_webhooks", "schedule": 15.0},
        # Model answers kept for a retry that never came (KEPT_VERDICT_RETENTION_DAYS).
        "purge-kept-verdicts": {"task": "moderation.inference.tasks.purge_kept_verdicts", "schedule": 60 * 60.0},
        # Old days' CSP violation rows (CSP_REPORT_RETENTION_DAYS).
        "purge-csp-violations": {"task": "workbench.tasks.purge_csp_violations", "schedule": 24 * 60 * 60.0},
        # Kept impact previews of published drafts, of replaced active versions, or past IMPACT_PREVIEW_RETENTION_DAYS.
        "purge-impact-previews": {
            "task": "moderation.inference.tasks.purge_impact_previews",
            "schedule": 24 * 60 * 60.0,
        },
        # The ops page's list of videos to check again, less those consistent now (RoutingRecheck).
        "prune-routing-rechecks": {"task": "moderation.ops.tasks.prune_routing_rechecks", "schedule": 5 * 60.0},
        # Distinct embedding vectors no video holds any more (reposts taken down, videos embedded again).
        "sweep-distinct-vectors": {
            "task": "moderation.reproduction.tasks.sweep_distinct_vectors",
            "schedule": 5 * 60.0,
        },
    }
