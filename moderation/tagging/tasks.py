"""Tagging tasks: thin wrappers that re-fetch by id and call one service (routed in workbench/queues.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from workbench.queues import LONG_TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="moderation.tagging.tasks.embed_tags", **LONG_TASK_OPTIONS)
def embed_tags() -> int:
    """Embed every tag without an embedding (media worker; idempotent)."""
    from moderation.tagging.services import tags_embed_missing

    return tags_embed_missing()
