from __future__ import annotations

import logging
import time

from django.db import transaction

from moderation.inference.backends import ContentBundle, Frame, Segment, get_backend
from moderation.inference.models import Decision, ModelVersion
from moderation.media.models import Video
from moderation.policies.services import policy_version_active
from moderation.review.models import ReviewTask

logger = logging.getLogger(__name__)

BASELINE_NAME = "evidence-baseline-v1"


def model_version_serving() -> ModelVersion:
    """The model that makes new decisions: the serving one, else the evidence baseline."""
    serving = ModelVersion.objects.filter(is_serving=True).order_by("-created_at").first()
    if serving is not None and serving.backend == ModelVersion.Backend.EVIDENCE_BASELINE:
        return serving
    baseline, _ = ModelVersion.objects.get_or_create(
        name=BASELINE_NAME, defaults={"backend": ModelVersion.Backend.EVIDENCE_BASELINE, "is_serving": serving is None}
    )
    return baseline


def model_version_register(
    *,
    name: str,
    backend: str,
    base_model: str = "",
    adapter_path: str = "",
    source_job_id: int | None = None,
    metrics: dict | None = None,
) -> ModelVersion:
    """Register a model version (idempotent by name), e.g. the adapter a training job saved."""
    version, _ = ModelVersion.objects.update_or_create(
        name=name,
        defaults={
            "backend": backend,
            "base_model": base_model,
            "adapter_path": adapter_path,
            "source_job_id": source_job_id,
            "metrics": metrics or {},
        },
    )
    return version


def content_bundle_for(video: Video) -> ContentBundle:
    return ContentBundle(
        title=video.title,
        description=video.description,
        uploader=video.uploader,
        language=video.language,
        segments=[Segment(s.id, s.start, s.end, s.text) for s in video.segments.all()],
        frames=[Frame(k.id, k.timestamp, k.selected) for k in video.keyframes.all()],
    )


def decision_create_for_video(*, video_id: int) -> Decision:
    """Run the serving model on a ready video and put the decision in the review queue.

    Idempotent: a decision already made for this video, policy version and model version is
    returned as it is (a redelivered task does no second inference), and its review task is
    created if it is missing.
    """
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        policy_version = policy_version_active()
        model_version = model_version_serving()
        existing = Decision.objects.filter(
            video=video, policy_version=policy_version, model_version=model_version
        ).first()
        if existing is not None:
            ReviewTask.objects.get_or_create(decision=existing)
            return existing

        backend = get_backend(model_version.backend)
        started = time.perf_counter()
        result = backend.decide(content_bundle_for(video), policy_version.taxonomy, policy_version.safe_label)
        latency_ms = (time.perf_counter() - started) * 1000
        decision = Decision.objects.create(
            video=video,
            policy_version=policy_version,
            model_version=model_version,
            backend=model_version.backend,
            label=result.label,
            is_violation=result.is_violation,
            confidence=result.confidence,
            cot=result.cot,
            raw_output=result.raw_output,
            parse_error=result.parse_error,
            latency_ms=latency_ms,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
        )
        # Likely violations first: the reviewer sees the riskiest items before the rest.
        priority = int(round(decision.confidence * 100)) if decision.is_violation else 0
        ReviewTask.objects.create(decision=decision, priority=priority)
        video.stage = Video.Stage.DONE
        video.progress = 100
        video.save(update_fields=["stage", "progress", "updated_at"])
    logger.info("decision %s for video %s: %s (%.2f)", decision.pk, video_id, decision.label, decision.confidence)
    return decision


def decision_record_failure(*, video_id: int, error: str) -> None:
    """Inference failed: the video keeps its media but shows why no decision was made."""
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.FAILED, stage=Video.Stage.INFERENCE, error=f"Model inference failed: {error}"
    )
