from __future__ import annotations

import logging

from celery import shared_task

from workbench.queues import LONG_TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="moderation.review.tasks.run_queue_decision", **LONG_TASK_OPTIONS)
def run_queue_decision(decision_id: int, queue_id: int) -> int | None:
    """The decision of the model a review queue names (see ReviewQueue.model_version); runs on the infer queue."""
    from moderation.review.services import review_queue_decision

    try:
        decision = review_queue_decision(decision_id=decision_id, queue_id=queue_id)
    except Exception:  # e.g. the decision was deleted meanwhile; the log says why
        logger.exception("queue %s: deciding the item of decision %s failed", queue_id, decision_id)
        return None
    return decision.pk if decision else None
