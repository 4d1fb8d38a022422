"""Model registry for the moderation app; each wing defines its own models."""

from moderation.feedback.models import FeedbackAggregate, FeedbackEvent, Integration
from moderation.inference.cascade_models import CascadeModel
from moderation.inference.models import Decision, ModelVersion
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from moderation.policies.models import Policy, PolicyVersion
from moderation.review.models import AuditEvent, ItemLabel, Review, ReviewQueue, ReviewSkip, ReviewTask

__all__ = [
    "AuditEvent",
    "CascadeModel",
    "Decision",
    "FeedbackAggregate",
    "FeedbackEvent",
    "Integration",
    "ItemLabel",
    "Keyframe",
    "OcrBox",
    "Patch",
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
