"""Factories for every model the tests need; fixtures in conftest are built from these."""

from __future__ import annotations

import uuid
from pathlib import Path

import factory
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone

from annotation.models import Adjudication, CotCorrection, Tag2CotTask
from moderation.models import (
    Decision,
    ModelVersion,
    Policy,
    PolicyVersion,
    Review,
    ReviewQueue,
    ReviewTask,
    TranscriptSegment,
    Video,
)
from moderation.policies.seed import kuaimod_taxonomy
from moderation.reproduction.models import ReproCandidate
from moderation.review.services import review_queue_default
from moderation.tagging.models import Tag, TagEvent, TagProposal, TagProposalSighting, TagSuggestion
from moderation.tagging.services import tag_queue_default
from training.models import PreferenceDataset


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-test-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        self.save()


class PolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Policy
        django_get_or_create = ("slug",)

    slug = "kuaimod"
    name = "KuaiMod taxonomy"


class PolicyVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PolicyVersion

    policy = factory.SubFactory(PolicyFactory)
    number = factory.Sequence(lambda n: n + 1)
    status = PolicyVersion.Status.PUBLISHED
    is_active = True
    taxonomy = factory.LazyFunction(kuaimod_taxonomy)


class VideoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Video

    title = factory.Sequence(lambda n: f"Demo video {n}")
    file = factory.django.FileField(filename="clip.mp4", data=b"not a real video")
    status = Video.Status.READY
    duration = 6.0
    has_audio = True


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TranscriptSegment

    video = factory.SubFactory(VideoFactory)
    index = factory.Sequence(lambda n: n)
    start = 0.0
    end = 2.0
    text = "hello and welcome"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion
        django_get_or_create = ("name",)

    name = "evidence-baseline-v1"
    backend = ModelVersion.Backend.EVIDENCE_BASELINE


class DecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Decision

    video = factory.SubFactory(VideoFactory)
    policy_version = factory.SubFactory(PolicyVersionFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    backend = ModelVersion.Backend.EVIDENCE_BASELINE
    label = "正向"
    is_violation = False
    confidence = 0.6
    cot = factory.LazyFunction(
        lambda: [
            {"key": k, "title": k.replace("_", " "), "text": f"{k} text", "evidence": []}
            for k in ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")
        ]
    )


def _active_policy_version() -> PolicyVersion:
    found = PolicyVersion.objects.filter(policy__slug=PolicyFactory.slug, is_active=True).first()
    return found if found is not None else PolicyVersionFactory()


class DecidedVideoFactory(VideoFactory):
    """A video with a model decision (under the active policy version), so routed: open to every reviewer unless
    routing sent it to a restricted queue. A ``VideoFactory`` video is not decided yet, so not routed: open only
    to its uploader and to those who see every video (``video_open_to_q``)."""

    class Meta:
        model = Video
        skip_postgeneration_save = True

    @factory.post_generation
    def decision(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if create:
            DecisionFactory(video=self, policy_version=_active_policy_version(), **kwargs)


class ReviewTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewTask

    decision = factory.SubFactory(DecisionFactory)
    queue = factory.LazyFunction(lambda: review_queue_default())
    queue = factory.LazyFunction(
        lambda: ReviewQueue.objects.get_or_create(slug=ReviewQueue.DEFAULT_SLUG, defaults={"name": "Default"})[0]
    )


class ReviewFactory(factory.django.DjangoModelFactory):
    """An override by default: the reviewer's label differs from the model's."""

    class Meta:
        model = Review

    task = factory.SubFactory(ReviewTaskFactory)
    decision = factory.SelfAttribute("task.decision")
    reviewer = factory.SubFactory(UserFactory, role="moderator")
    policy_version = factory.SelfAttribute("decision.policy_version")
    verdict = Review.Verdict.OVERRIDE
    label = "引导私下交易"
    note = "Asks viewers to message privately to buy outside the app."


class Tag2CotTaskFactory(factory.django.DjangoModelFactory):
    """A finished Tag2CoT task by default: a labeler's five stages reasoning to ``target_label`` for a decision
    whose model CoT reached another label (``status="open"``, ``stages=[]``, ``author=None`` for an open one)."""

    class Meta:
        model = Tag2CotTask

    decision = factory.SubFactory(DecisionFactory, label="正向")
    video = factory.SelfAttribute("decision.video")
    policy_version = factory.SelfAttribute("decision.policy_version")
    target_label = "引导私下交易"
    label_source = "review"
    status = Tag2CotTask.Status.DONE
    author = factory.SubFactory(UserFactory, role="labeler")
    completed_at = factory.LazyFunction(timezone.now)
    stages = factory.LazyAttribute(
        lambda o: (
            [
                {"key": k, "title": k.replace("_", " "), "text": f"tag2cot {k}", "evidence": []}
                for k in ("content_extraction", "analysis", "intermediate_check", "user_feedback")
            ]
            + [{"key": "final_judgment", "title": "final judgment", "text": f"label: {o.target_label}", "evidence": []}]
        )
    )


class CotCorrectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CotCorrection

    decision = factory.SubFactory(DecisionFactory)
    label = "夸大商品功效"
    status = CotCorrection.Status.SUBMITTED
    author = factory.SubFactory(UserFactory, role="labeler")
    stages = factory.LazyFunction(
        lambda: [
            {"key": k, "title": k.replace("_", " "), "text": f"corrected {k}", "evidence": []}
            for k in ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")
        ]
    )


class TagFactory(factory.django.DjangoModelFactory):
    """A vocabulary tag (no embedding: enough for events, suggestions and ranker training)."""

    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"tag{n}")


class TagEventFactory(factory.django.DjangoModelFactory):
    """A reviewer's answer to a suggestion, with the features the suggestion had (the ranker's training data)."""

    class Meta:
        model = TagEvent

    video = factory.SubFactory(VideoFactory)
    tag = factory.SubFactory(TagFactory)
    action = TagEvent.Action.ACCEPT
    reviewer = factory.SubFactory(UserFactory, role="moderator")
    features = factory.LazyFunction(lambda: {"embedding": 0.5})


class TagSuggestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TagSuggestion

    video = factory.SubFactory(VideoFactory)
    tag = factory.SubFactory(TagFactory)
    score = 0.5
    features = factory.LazyFunction(lambda: {"embedding": 0.5})


class TagTaskFactory(ReviewTaskFactory):
    """An item of the Content tags queue (``tag_queue_default``) on a decided video with no media file, and the
    ranker's ``suggestions`` for that video: ``[(tag or name, score), ...]``, a name taking the vocabulary's tag of
    that name or a new one. Each suggestion comes from ``suggestions__sources`` (``["embedding"]`` unless given),
    with its score as its embedding feature (``suggestions__features`` replaces that)::

        TagTaskFactory(decision__policy_version=policy_version, suggestions=[("美食", 0.93), ("火锅", 0.71)])
    """

    class Meta:
        model = ReviewTask
        skip_postgeneration_save = True

    decision = factory.SubFactory(DecisionFactory, video__file="")
    queue = factory.LazyFunction(tag_queue_default)

    @factory.post_generation
    def suggestions(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if not create or not extracted:
            return
        sources = kwargs.get("sources", ["embedding"])
        for tag, score in extracted:
            if not isinstance(tag, Tag):
                tag = Tag.objects.filter(name=tag).first() or TagFactory(name=tag)
            features = kwargs.get("features", {"embedding": score})
            TagSuggestionFactory(
                video=self.decision.video, tag=tag, score=score, sources=list(sources), features=dict(features)
            )


class ReproCandidateFactory(factory.django.DjangoModelFactory):
    """A reproduction pair above the pair queue's threshold: ``video`` a likely copy of ``original``, both decided
    (so open to every reviewer)."""

    class Meta:
        model = ReproCandidate

    video = factory.SubFactory(DecidedVideoFactory)
    original = factory.SubFactory(DecidedVideoFactory)
    score = 0.95
    hash_score = 0.9
    frame_similarity = 0.9
    text_similarity = 0.5


class TagProposalFactory(factory.django.DjangoModelFactory):
    """A pending vocabulary proposal from a model's answer, seen on ``video`` (a sighting, so open to whoever may see
    that video); ``sightings=[video, ...]`` adds sightings on more videos."""

    class Meta:
        model = TagProposal
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"proposed{n}")
    key = factory.SelfAttribute("name")
    video = factory.SubFactory(DecidedVideoFactory)
    model_name = "qwen-vl-probe"

    @factory.post_generation
    def sightings(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if not create:
            return
        for video in [v for v in [self.video, *(extracted or [])] if v is not None]:
            TagProposalSighting.objects.create(proposal=self, video=video, phrase=self.name, model_name=self.model_name)


class AdjudicationFactory(factory.django.DjangoModelFactory):
    """An open adjudication: the model passed the video, users report it."""

    class Meta:
        model = Adjudication

    decision = factory.SubFactory(DecisionFactory)
    video = factory.SelfAttribute("decision.video")
    kind = "reported_pass"
    reason = "Reported by 12% of 400 viewers; the model passed it."


class PreferenceDatasetFactory(factory.django.DjangoModelFactory):
    """A built dataset. ``jsonl=b"..."`` writes its training snapshot under ``TRAINING_OUTPUT_DIR/datasets`` (as a
    build does) and names it in ``jsonl_path``, so its download serves that file."""

    class Meta:
        model = PreferenceDataset
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"pairs {n}")
    pair_count = 1
    train_count = 1

    @factory.post_generation
    def jsonl(self, create, extracted, **kwargs):  # type: ignore[no-untyped-def]
        if not create or extracted is None:
            return
        folder = Path(settings.TRAINING_OUTPUT_DIR) / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"dataset-{uuid.uuid4().hex}-train.jsonl"
        path.write_bytes(extracted)
        self.jsonl_path = str(path)
        self.save(update_fields=["jsonl_path"])
