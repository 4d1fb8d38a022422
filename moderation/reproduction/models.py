"""Reproduced-content identification: the hash index, candidate pairs, model judgements, verdicts, clusters."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import BitField, HalfVectorField, HnswIndex, VectorField

from moderation.media.models import FRAME_EMBEDDING_DIM, TEXT_EMBEDDING_DIM


class FrameHash(models.Model):
    """One second of a video in the PDQ index.

    ``hash`` is the frame's PDQ hash as ``bit(256)`` (Hamming distance in SQL: ``bit_count(a # b)``);
    ``hash_mirror`` the hash of the horizontally flipped frame (PDQ is not flip-invariant, so a
    mirrored re-upload is found by querying with it). These rows are the reproduction index: each
    process searches a copy of them kept in step by id (``pdq_index``; rows are replaced, never updated).
    Low-quality (near-flat) frames, ``quality`` below ``matching.MIN_QUALITY``, stay available for
    alignment but are never looked up.
    """

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="+")
    keyframe = models.ForeignKey(
        "moderation.Keyframe", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    t = models.FloatField()
    quality = models.PositiveSmallIntegerField(default=0)
    hash = BitField(length=256)
    hash_mirror = BitField(length=256, null=True, blank=True)

    class Meta:
        ordering = ["video", "t"]
        indexes = [models.Index(fields=["video", "t"], name="repro_framehash_video_t")]


class TranscriptVector(models.Model):
    """Each distinct transcript embedding once (``Video.text_embedding``), keyed by ``Video.text_key``: what the
    transcript HNSW scan walks.

    On a platform hundreds of reposts carry the same transcript, so the same vector. In an HNSW graph of the videos
    those copies link mostly to one another (pgvector keeps up to 10 rows per graph element, a thousand reposts make a
    clique of a hundred equal elements): a query near them fills ``ef_search`` with the clique and loses its nearest
    other neighbour, the source of a copy (bench/repro_duplicates.py, bench/RESULTS.md issue 20). Here the graph holds
    one element per distinct vector, and the videos that share it are read by their exact key (a B-tree look-up).
    Rows are only inserted, by the trigger that sets the keys (migration 0032), so rewriting a video's embedding with
    the same vector (a rebuild) adds nothing to the graph. A vector no video holds any more stays until the
    periodic sweep (``services.distinct_vectors_sweep_step``, a batch of keys at a time) or a full
    ``repro_index_rebuild`` drops it; the scan reads two more vectors than it needs for that.
    """

    key = models.UUIDField(primary_key=True)
    embedding = VectorField(dimensions=TEXT_EMBEDDING_DIM)

    class Meta:
        indexes = [
            HnswIndex(
                name="transcript_vector_hnsw", fields=["embedding"], m=16, ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]  # fmt: skip


class PictureVector(models.Model):
    """Each distinct video embedding once (``Video.visual_embedding``, half precision), keyed by
    ``Video.visual_key``: what the picture HNSW scan walks (see ``TranscriptVector``)."""

    key = models.UUIDField(primary_key=True)
    embedding = HalfVectorField(dimensions=FRAME_EMBEDDING_DIM)

    class Meta:
        indexes = [
            HnswIndex(
                name="picture_vector_hnsw", fields=["embedding"], m=16, ef_construction=64,
                opclasses=["halfvec_cosine_ops"],
            ),
        ]  # fmt: skip


class VectorSweep(models.Model):
    """Where the incremental sweep of the distinct vectors stands, one row per table (``TranscriptVector``,
    ``PictureVector``): ``services.distinct_vectors_sweep_step`` looks at the next batch of keys after ``after`` (none:
    from the first), drops those no video holds, and keeps them in ``dropped`` for the next step to re-check (a video
    written with one of them while it was being dropped gets its vector back)."""

    table = models.CharField(primary_key=True, max_length=63)
    after = models.UUIDField(null=True, blank=True)
    dropped = ArrayField(models.UUIDField(), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class ReproRetrievalFailure(models.Model):
    """A video whose reproduction candidates could not be computed: the ``find_candidates`` task retried while
    media storage (the student model in it) did not answer and gave up after ``STORAGE_RETRIES`` tries. The ops
    page lists these with the error; a later successful retrieval for the video deletes the row.

    An operator's Retry queues the search again (``queued_at``, later than ``failed_at`` while it is on its way: a
    second click queues nothing; one never answered is lost after ``QUEUED_FOR`` and may be retried again); a try
    that fails again records its error and time as the first did. Dismiss (``dismissed_at``, ``dismissed_by``) takes
    a video the operator accepts will not be compared off the list; a later failure of the video lists it again."""

    QUEUED_FOR = timedelta(hours=6)  # CELERY_VISIBILITY_TIMEOUT's default: a task not run by then was lost

    video = models.OneToOneField("moderation.Video", on_delete=models.CASCADE, related_name="+")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"reproduction candidates of video {self.video_id} not computed"

    def is_queued(self, *, now: datetime) -> bool:
        """An operator's retry is on its way: queued after the last failure, and not so long ago it was lost."""
        return self.queued_at is not None and self.queued_at > self.failed_at and self.queued_at > now - self.QUEUED_FOR


class ReproCandidate(models.Model):
    """A candidate pair: ``video`` (the later upload) may reproduce ``original`` (the earlier one).

    ``evidence``: ``{"alignment": {"offset", "scale", "mirrored", "coverage_copy", "coverage_original",
    "matches": [{"t", "t_orig", "d"}]}, "frame_matches": [{"t", "t_orig", "sim"}], "video_sim", "text_sim",
    "sources"}``.
    ``offset`` is in seconds: the original's time = copy's time + offset.
    """

    class Label(models.TextChoices):
        REPRODUCTION = "reproduction", "Reproduction"
        DERIVATIVE = "derivative", "Derivative with added value"
        UNRELATED = "unrelated", "Unrelated"

    video = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="repro_candidates")
    original = models.ForeignKey("moderation.Video", on_delete=models.CASCADE, related_name="repro_copies")
    rank = models.PositiveSmallIntegerField(default=0)
    retrieval_score = models.FloatField(default=0.0)
    hash_score = models.FloatField(default=0.0)
    frame_similarity = models.FloatField(default=0.0)
    text_similarity = models.FloatField(default=0.0)
    offset = models.FloatField(default=0.0)
    evidence = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=dict, blank=True)
    # The student's judgement (null until a student model exists).
    student_score = models.FloatField(null=True, blank=True)
    student_label = models.CharField(max_length=20, choices=Label.choices, blank=True)
    student_model = models.CharField(max_length=100, blank=True)
    # What the queue orders and thresholds on: the student's score when there is one, else retrieval's.
    score = models.FloatField(default=0.0, db_index=True)
    # The version of the pair scorer that measured ``features`` (``features.PAIR_SCORER_VERSION``; 0: before it
    # was recorded): ``manage.py rescore_pairs`` measures again the pairs of an older one.
    scored_with = models.PositiveSmallIntegerField(default=0)

    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["video", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["video", "original"], name="uniq_repro_pair"),
            models.CheckConstraint(condition=~models.Q(video=models.F("original")), name="repro_pair_distinct"),
        ]
        indexes = [
            models.Index(fields=["-score", "id"], name="repro_candidate_queue"),
            # The live claims (the pair queue's "claimed" count, the pair a reviewer holds): a lease is cleared by
            # a verdict or a release, so only the claims not yet decided are here, not every pair ever claimed.
            models.Index(
                fields=["lease_expires_at"], name="repro_candidate_live_lease",
                condition=models.Q(lease_expires_at__isnull=False),
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"video {self.video_id} ~ original {self.original_id}"


class TeacherJudgement(models.Model):
    """The teacher VLM's judgement of a pair: JSON ``{"score", "label", "rationale"}``; unparseable output is
    kept raw with the reason in ``parse_error``."""

    candidate = models.ForeignKey(ReproCandidate, on_delete=models.CASCADE, related_name="teacher_judgements")
    backend = models.CharField(max_length=40)
    base_model = models.CharField(max_length=500, blank=True)
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=20, choices=ReproCandidate.Label.choices, blank=True)
    rationale = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    parse_error = models.TextField(blank=True)
    latency_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "backend", "base_model"], name="one_teacher_judgement_per_model"
            )
        ]


class PairReview(models.Model):
    """A human verdict on a pair; one per pair. It labels the pair for the student's training."""

    candidate = models.OneToOneField(ReproCandidate, on_delete=models.CASCADE, related_name="review")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=20, choices=ReproCandidate.Label.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The reviewed pairs' list, latest verdict first: its pages read a window of pairs from here.
        indexes = [models.Index(fields=["created_at", "candidate"], name="pair_review_created_order")]


class ClusterMembership(models.Model):
    """Which reproduction cluster a video belongs to: the connected component of confirmed reproductions.

    ``cluster_key`` is ``"repro-<smallest video id in the cluster>"``. Videos in no confirmed pair have
    no row (their key is their own, see ``selectors.cluster_key_for``).
    """

    video = models.OneToOneField("moderation.Video", on_delete=models.CASCADE, related_name="repro_cluster")
    cluster_key = models.CharField(max_length=40, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
