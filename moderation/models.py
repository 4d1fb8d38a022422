"""Model registry for the moderation app; each wing defines its own models."""

from moderation.feedback.models import FeedbackAggregate, FeedbackEvent
from moderation.inference.cascade_models import CascadeModel, CascadeTraining
from moderation.inference.models import Decision, DecisionRerun, KeptVerdict, MissingDecisionRepair, ModelVersion
from moderation.integrations.models import (
    IdempotencyKey,
    Integration,
    IntegrationVideo,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from moderation.labels.models import ItemLabel
from moderation.media.models import Keyframe, OcrBox, Patch, TranscriptSegment, Video
from moderation.policies.models import Policy, PolicyVersion
from moderation.reproduction.models import ClusterMembership, FrameHash, PairReview, ReproCandidate, TeacherJudgement
from moderation.review.models import (
    AuditEvent,
    AwaitedQueueItem,
    Review,
    ReviewQueue,
    ReviewQueueCount,
    ReviewSkip,
    ReviewTask,
)
from moderation.tagging.models import (
    Tag,
    TagCandidate,
    TagClassifier,
    TagEvent,
    TagImport,
    TagProposal,
    TagProposalSighting,
    TagRanker,
    TagRevision,
    TagSet,
    TagSuggestion,
    VideoTag,
    VideoTagState,
    VocabularyVersion,
)

__all__ = [
    "Tag",
    "TagCandidate",
    "TagClassifier",
    "TagEvent",
    "TagImport",
    "TagProposal",
    "TagProposalSighting",
    "TagRanker",
    "TagRevision",
    "TagSet",
    "TagSuggestion",
    "VideoTag",
    "VideoTagState",
    "VocabularyVersion",
    "AuditEvent",
    "AwaitedQueueItem",
    "CascadeModel",
    "CascadeTraining",
    "ClusterMembership",
    "Decision",
    "DecisionRerun",
    "FeedbackAggregate",
    "FeedbackEvent",
    "FrameHash",
    "IdempotencyKey",
    "Integration",
    "IntegrationVideo",
    "ItemLabel",
    "KeptVerdict",
    "MissingDecisionRepair",
    "Keyframe",
    "OcrBox",
    "PairReview",
    "Patch",
    "ModelVersion",
    "OutboxEvent",
    "Policy",
    "PolicyVersion",
    "ReproCandidate",
    "Review",
    "ReviewQueue",
    "ReviewQueueCount",
    "ReviewSkip",
    "ReviewTask",
    "TeacherJudgement",
    "TranscriptSegment",
    "Video",
    "WebhookDelivery",
    "WebhookEndpoint",
]
