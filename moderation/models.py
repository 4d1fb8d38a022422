"""Model registry for the moderation app; each wing defines its own models."""

from moderation.feedback.models import FeedbackAggregate, FeedbackEvent, Integration
from moderation.inference.cascade_models import CascadeModel
from moderation.inference.models import Decision, ModelVersion
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from moderation.policies.models import Policy, PolicyVersion
from moderation.reproduction.models import ClusterMembership, FrameHash, PairReview, ReproCandidate, TeacherJudgement
from moderation.review.models import AuditEvent, ItemLabel, Review, ReviewQueue, ReviewSkip, ReviewTask

__all__ = [
    "AuditEvent",
    "CascadeModel",
    "ClusterMembership",
    "Decision",
    "FeedbackAggregate",
    "FeedbackEvent",
    "FrameHash",
    "Integration",
    "ItemLabel",
    "Keyframe",
    "OcrBox",
    "PairReview",
    "Patch",
    "ModelVersion",
    "Policy",
    "PolicyVersion",
    "ReproCandidate",
    "Review",
    "ReviewQueue",
    "ReviewSkip",
    "ReviewTask",
    "TeacherJudgement",
    "TranscriptSegment",
    "Video",
]
