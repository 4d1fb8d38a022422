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


@shared_task(name="moderation.tagging.tasks.generate_tag_candidates", **LONG_TASK_OPTIONS)
def generate_tag_candidates(video_id: int) -> int:
    """Candidates and ranked suggestions for one video (media worker: it embeds the video's text)."""
    from moderation.tagging.services import tag_candidates_generate

    try:
        return tag_candidates_generate(video_id=int(video_id))
    except Exception as exc:  # a bad item must not kill the worker; the reason is kept on the video
        logger.exception("tag candidates failed for video %s", video_id)
        from moderation.tagging.models import VideoTagState

        VideoTagState.objects.update_or_create(video_id=int(video_id), defaults={"error": str(exc)[:2000]})
        return 0


@shared_task(name="moderation.tagging.tasks.train_tag_ranker", **LONG_TASK_OPTIONS)
def train_tag_ranker(user_id: int | None = None) -> int:
    """Retrain the tag ranker and per-tag classifiers from reviewers' events (button and beat)."""
    from django.contrib.auth.models import User

    from moderation.tagging.services import tag_ranker_train

    user = User.objects.filter(pk=user_id).first() if user_id else None
    return int(tag_ranker_train(user=user).pk)


@shared_task(name="moderation.tagging.tasks.suggest_vlm_tags", **LONG_TASK_OPTIONS)
def suggest_vlm_tags(video_id: int) -> int:
    """Free-text tags from the serving VLM, snapped or proposed (infer worker; skipped when no VLM
    serves; idempotent per video and model). Returns how many phrases snapped to a tag."""
    from moderation.tagging.services import tag_vlm_suggest

    try:
        outcome = tag_vlm_suggest(video_id=int(video_id))
    except Exception as exc:  # a bad item must not kill the worker; the reason is kept on the video
        logger.exception("VLM tags failed for video %s", video_id)
        from moderation.tagging.models import VideoTagState

        VideoTagState.objects.update_or_create(video_id=int(video_id), defaults={"vlm_error": str(exc)[:2000]})
        return 0
    if outcome.skipped:
        logger.info("VLM tags for video %s skipped: %s", video_id, outcome.skipped)
    return len(outcome.snapped)


@shared_task(name="moderation.tagging.tasks.import_vocabulary", **LONG_TASK_OPTIONS)
def import_vocabulary(import_id: int) -> str | None:
    """Run one vocabulary import sent from the screen (TagImport); idempotent: a finished one is left."""
    from moderation.tagging.models import TagImport
    from moderation.tagging.services import tag_import_run

    try:
        return tag_import_run(import_id=int(import_id)).status
    except TagImport.DoesNotExist:
        logger.warning("vocabulary import %s no longer exists", import_id)
        return None
