"""Model registry for the moderation app; each wing defines its own models."""

from moderation.inference.models import Decision, ModelVersion
from moderation.media.models import Keyframe, TranscriptSegment, Video
from moderation.policies.models import Policy, PolicyVersion
from moderation.review.models import AuditEvent, ItemLabel, Review, ReviewQueue, ReviewSkip, ReviewTask

__all__ = [
    "AuditEvent",
    "Decision",
    "ItemLabel",
    "Keyframe",
    "ModelVersion",
    "Policy",
    "PolicyVersion",
    "Review",
    "ReviewQueue",
    "ReviewSkip",
    "ReviewTask",
    "TranscriptSegment",
    "Video",
]
