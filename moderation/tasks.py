"""Celery discovers tasks here; each wing keeps its own tasks module."""

from moderation.inference.tasks import run_inference
from moderation.integrations.tasks import deliver_webhook, dispatch_outbox_event, sweep_webhooks
from moderation.media.tasks import process_video
from moderation.ops.tasks import prune_routing_rechecks
from moderation.reproduction.tasks import find_candidates, judge_pair
from moderation.review.tasks import run_queue_decision
from moderation.tagging.tasks import embed_tags, generate_tag_candidates, suggest_vlm_tags, train_tag_ranker

__all__ = [
    "embed_tags",
    "generate_tag_candidates",
    "suggest_vlm_tags",
    "train_tag_ranker",
    "deliver_webhook",
    "dispatch_outbox_event",
    "find_candidates",
    "judge_pair",
    "process_video",
    "prune_routing_rechecks",
    "run_inference",
    "run_queue_decision",
    "sweep_webhooks",
]
