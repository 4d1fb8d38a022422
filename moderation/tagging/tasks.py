"""Tagging tasks: thin wrappers that re-fetch by id and call one service (routed in workbench/queues.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from workbench.queues import INFER_ITEM_TASK_OPTIONS, LONG_TASK_OPTIONS
from workbench.worker_limits import records_hard_time_limit, soft_time_limit_text

logger = logging.getLogger(__name__)


@shared_task(name="moderation.tagging.tasks.embed_tags", bind=True, **LONG_TASK_OPTIONS)
def embed_tags(self: Any) -> int:
    """Embed every tag without an embedding (media worker; idempotent). Stopped by the media queue's soft time
    limit, the tags still without one say why on the vocabulary screen (the batches done are kept)."""
    from moderation.tagging.services import tags_embed_failure_record, tags_embed_missing

    try:
        return tags_embed_missing()
    except SoftTimeLimitExceeded:
        logger.warning("tag embedding stopped at the soft time limit")
        tags_embed_failure_record(error=soft_time_limit_text(self))
        return 0


def _reason(exc: Exception) -> str:
    """What the tags panel says of a try that failed: a soft time limit in words (after how long, which limit; its
    bare text was "SoftTimeLimitExceeded()"), any other error as it reads."""
    return soft_time_limit_text() if isinstance(exc, SoftTimeLimitExceeded) else str(exc)


@shared_task(name="moderation.tagging.tasks.generate_tag_candidates", **LONG_TASK_OPTIONS)
def generate_tag_candidates(video_id: int, attempt: int | None = None) -> int:
    """Candidates and ranked suggestions for one video (media worker: it embeds the video's text). The try is
    recorded (``tag_try_take``): one whose worker is lost is tried again by the beat (``attempt``: that try)."""
    from moderation.tagging.services import tag_candidates_generate, tag_try_done, tag_try_take

    if not tag_try_take(video_id=int(video_id), kind="candidates", attempt=attempt):
        logger.info("tag candidates for video %s: try %s taken or given up already", video_id, attempt)
        return 0
    # The try ends (tag_try_done) on a result or a caught error only: a child the prefork parent ends at the hard limit
    # (SIGTERM: SystemExit on its way out) leaves it running, as the parent's recorder made it due to the sweep.
    try:
        made = tag_candidates_generate(video_id=int(video_id))
    except Exception as exc:  # a bad item must not kill the worker; the reason is kept on the video
        logger.exception("tag candidates failed for video %s", video_id)
        from moderation.tagging.models import VideoTagState

        VideoTagState.objects.update_or_create(video_id=int(video_id), defaults={"error": _reason(exc)[:2000]})
        made = 0
    tag_try_done(video_id=int(video_id), kind="candidates")
    return made


@records_hard_time_limit("moderation.tagging.tasks.generate_tag_candidates")
def _candidates_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    """A prefork media worker's parent, at the media queue's hard limit: the try made due to the next sweep."""
    from moderation.tagging.services import tag_try_stopped

    tag_try_stopped(video_id=int(kwargs.get("video_id", args[0] if args else 0)), kind="candidates", reason=message)


@shared_task(name="moderation.tagging.tasks.recover_tag_tries")
def recover_tag_tries() -> dict[str, list[int]]:
    """Beat: tag tasks whose worker was lost (running past their limit) are queued again, or given up."""
    from moderation.tagging.services import tag_tries_recover

    return tag_tries_recover()


@shared_task(bind=True, name="moderation.tagging.tasks.train_tag_ranker", **LONG_TASK_OPTIONS)
def train_tag_ranker(self: Any, run_id: int | None = None) -> str | None:
    """Run one recorded training of the tag ranker (TagRankerTraining). From the ranker page: the run it recorded
    (``run_id``). From beat (no argument): a run recorded under this message's id, so a redelivered message finds
    it. Idempotent either way: a started or finished run is left as it is. Returns the run's status."""
    from moderation.tagging.models import TagRankerTraining
    from moderation.tagging.services import tag_ranker_training_request, tag_ranker_training_run

    if run_id is None:
        message_id = str(self.request.id or "")
        run_id = tag_ranker_training_request(trigger=TagRankerTraining.Trigger.BEAT, message_id=message_id).pk
    try:
        return str(tag_ranker_training_run(run_id=int(run_id)).status)
    except TagRankerTraining.DoesNotExist:
        logger.warning("tag ranker training %s no longer exists", run_id)
        return None


# One item through the serving VLM: the infer item's limits (14/15 minutes), not the infer queue's three hours.
@shared_task(name="moderation.tagging.tasks.suggest_vlm_tags", **INFER_ITEM_TASK_OPTIONS)
def suggest_vlm_tags(video_id: int, attempt: int | None = None) -> int:
    """Free-text tags from the serving VLM, snapped or proposed (infer worker; skipped when no VLM
    serves; idempotent per video and model). Returns how many phrases snapped to a tag. The try is recorded as
    ``generate_tag_candidates``'s is."""
    from moderation.tagging.services import tag_try_done, tag_try_take, tag_vlm_suggest

    if not tag_try_take(video_id=int(video_id), kind="vlm", attempt=attempt):
        logger.info("VLM tags for video %s: try %s taken or given up already", video_id, attempt)
        return 0
    # As the candidates task: the try ends on a result or a caught error only, never in a ``finally``. A worker ended
    # at the hard limit (SystemExit on the way out: a prefork child's SIGTERM, a warm shutdown) leaves it running, so
    # the recorder (``_vlm_tags_stopped``) or the beat's sweep records it and tries again; a cleanup that ended it
    # made the recorder find no try running, and the try was lost with no reason and no retry.
    try:
        outcome = tag_vlm_suggest(video_id=int(video_id))
    except Exception as exc:  # a bad item must not kill the worker; the reason is kept on the video
        logger.exception("VLM tags failed for video %s", video_id)
        from moderation.tagging.models import VideoTagState

        VideoTagState.objects.update_or_create(video_id=int(video_id), defaults={"vlm_error": _reason(exc)[:2000]})
        tag_try_done(video_id=int(video_id), kind="vlm")
        return 0
    tag_try_done(video_id=int(video_id), kind="vlm")
    if outcome.skipped:
        logger.info("VLM tags for video %s skipped: %s", video_id, outcome.skipped)
    return len(outcome.snapped)


@records_hard_time_limit("moderation.tagging.tasks.suggest_vlm_tags")
def _vlm_tags_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    from moderation.tagging.services import tag_try_stopped

    tag_try_stopped(video_id=int(kwargs.get("video_id", args[0] if args else 0)), kind="vlm", reason=message)


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
