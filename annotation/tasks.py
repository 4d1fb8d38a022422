"""Annotation background work: disagreement checks (default queue) and Tag2CoT model drafts (infer queue)."""

from __future__ import annotations

import logging

from celery import shared_task

from workbench.queues import LONG_TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="annotation.tasks.evaluate_disagreements")
def evaluate_disagreements(video_ids: list[int] | None = None) -> int:
    """After a feedback batch (``video_ids``) or periodically (all videos with feedback)."""
    from annotation.services import disagreements_evaluate

    return len(disagreements_evaluate(video_ids=video_ids))


@shared_task(name="annotation.tasks.draft_tag2cot", **LONG_TASK_OPTIONS)
def draft_tag2cot(task_id: int) -> None:
    from annotation.services import tag2cot_draft_with_model

    try:
        tag2cot_draft_with_model(task_id=task_id)
    except Exception as exc:  # a failed draft leaves the task writable by hand
        logger.exception("Tag2CoT draft failed for task %s", task_id)
        from annotation.models import Tag2CotTask
        from moderation.errors import error_text

        # Our own refusals (a rubric too long for the serving model…) read as they are.
        Tag2CotTask.objects.filter(pk=task_id).update(draft_error=error_text(exc)[:2000])
