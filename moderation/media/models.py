from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import HalfVectorField, VectorField

# Frame embeddings: CLIP image embeddings (projection_dim 512, e.g. ViT-B/32) when the CLIP scorer runs,
# else the offline 32x16 greyscale thumbnail (also 512 values). Text: all-MiniLM-L6-v2 (384).
FRAME_EMBEDDING_DIM = 512
TEXT_EMBEDDING_DIM = 384


class Video(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class Stage(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROBE = "probe", "Probing"
        KEYFRAMES = "keyframes", "Keyframes"
        OCR = "ocr", "On-screen text"
        SELECT = "select", "Keyframe selection"
        PATCHES = "patches", "Patch saliency"
        ASR = "asr", "Speech to text"
        HASHES = "hashes", "Hashes and embeddings"
        INFERENCE = "inference", "Model inference"
        DONE = "done", "Done"

    title = models.CharField(max_length=500, blank=True)
    description = models.TextField(blank=True)
    uploader = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True, null=True, unique=True)

    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload"
        DEMO = "demo", "Demo generator"
        FOLDER = "folder", "Server folder"
        MANIFEST = "manifest", "JSONL manifest"
        KUAIMOD = "kuaimod", "KuaiMod-format import (text only)"

    source = models.CharField(max_length=20, choices=Source.choices, default=Source.UPLOAD)
    # Text-only items (e.g. KuaiMod benchmark records) have no media file.
    file = models.FileField(upload_to="videos/%Y/%m/", max_length=500, blank=True)
    original_filename = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)

    # ffprobe metadata
    duration = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    video_codec = models.CharField(max_length=50, blank=True)
    audio_codec = models.CharField(max_length=50, blank=True)
    has_audio = models.BooleanField(default=False)
    # The frames a model sees: the cover plus the selected keyframes (at most 1 + KEYFRAME_SELECT_K;
    # fewer for a short video). Imports set it from their image list (KuaiMod: cover + up to 8
    # frames). Stage 1 of the cascade uses it as a cheap visual signal; null when unknown.
    sampled_frames = models.PositiveSmallIntegerField(null=True, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    # Whether ``error`` was written for whoever sent the video (the file is not a video, is damaged…: a
    # ``SenderError``), set where the failure is recorded; otherwise it is the workbench's own detail
    # (an exception's text: hosts, paths, configuration), which a platform never reads (``video_error_for``).
    error_for_sender = models.BooleanField(default=False)

    class ErrorKind(models.TextChoices):
        OTHER = "", "Other"
        NOT_VIDEO = "not_video", "Not a video"
        DAMAGED = "damaged", "Damaged video"

    # What kind of failure ``error`` is, recorded where it happens: ``NOT_VIDEO`` when the file is not a video at all
    # (``NotAVideoError``), ``DAMAGED`` when it is a video the decoder cannot read (``DamagedVideoError``): no retry
    # can process either (``FILE_FAULT_KINDS``); their page offers Dismiss instead of Retry. Any other failure
    # (empty: "other": a timeout, a lost worker, storage) may pass on a retry.
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True, default=ErrorKind.OTHER)
    # The kinds that are the file's own fault: the same bytes fail again, so they are dismissed, never retried.
    FILE_FAULT_KINDS = (ErrorKind.NOT_VIDEO, ErrorKind.DAMAGED)
    # An operator dismissed the failure (a file that is not a video): no longer counted among the failed videos to
    # handle on the ops page; the audit log keeps it too (``video.dismiss``).
    failure_dismissed_at = models.DateTimeField(null=True, blank=True)
    failure_dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    language = models.CharField(max_length=16, blank=True)
    # On-screen text and speech given with the item (imports); the pipeline's own results live in
    # Keyframe/TranscriptSegment rows.
    ocr_text = models.TextField(blank=True)
    asr_text = models.TextField(blank=True)
    # Viewer comments given with the item (manifest import): a list of strings, for later prompts.
    comments = models.JSONField(default=list, blank=True)
    cover = models.ImageField(upload_to="covers/", max_length=500, blank=True)
    # Stored files (video, cover, keyframe images) found missing from media storage when a screen last
    # checked (``video_media_verify``); empty when all were there. ``missing_media_changed_at``: when that
    # list last changed. Each change is in the audit log.
    missing_media = models.JSONField(default=list, blank=True)
    missing_media_changed_at = models.DateTimeField(null=True, blank=True)
    # Set when routing sends the video's decision to a group-restricted review queue, at once, before that queue's
    # own model has decided it and its item exists (``review_tasks_create_for_decision``): until then no item says
    # the video is restricted, and ``video_open_to_q`` hides it by this flag instead (from all but admins).
    routed_restricted = models.BooleanField(default=False)

    # What the pipeline ran (recorded so a decision can say how its keyframes were chosen).
    keyframe_scorer = models.CharField(max_length=100, blank=True)
    keyframe_selection = models.CharField(max_length=50, blank=True)
    patch_method = models.CharField(max_length=100, blank=True)
    frame_embedding_model = models.CharField(max_length=200, blank=True)
    # vPDQ-style signature: [{"t": seconds, "hash": 64 hex chars, "quality": 0-100}], one entry per
    # 1 fps frame, consecutive near-duplicates (Hamming distance <= 31) dropped.
    pdq_signature = models.JSONField(default=list, blank=True)
    text_embedding = VectorField(dimensions=TEXT_EMBEDDING_DIM, null=True, blank=True)
    # The whole video's picture in one vector: the normalized mean of its keyframes' normalized embeddings
    # (``analyzers.video_embedding``), half precision; written with the keyframe embeddings (the media pipeline's
    # hashes stage) and by ``rebuild_repro_index``. Reproduction retrieval looks it up with one HNSW scan.
    visual_embedding = HalfVectorField(dimensions=FRAME_EMBEDDING_DIM, null=True, blank=True)
    # Exact keys of the two embeddings (md5 of the vector's text), set by a trigger whenever they are written
    # (migration 0032), never by Python: reposts share one vector, and retrieval's HNSW scans walk the distinct
    # vectors (``reproduction.models.TranscriptVector`` / ``PictureVector``) and reach a vector's videos by this key.
    text_key = models.UUIDField(null=True, blank=True, editable=False)
    visual_key = models.UUIDField(null=True, blank=True, editable=False)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # No HNSW index on the embeddings here (migration 0032): retrieval scans the distinct vectors, then reads
            # a vector's first videos by its key in id order (a farm of reposts: ``k`` index entries, not all of them).
            # The lists' order (newest first): walked from its end, a page's rows are found without sorting the
            # library, and ``WindowPaginator`` reads its window of first rows from it.
            models.Index(fields=["created_at", "id"], name="video_created_order"),
            models.Index(fields=["text_key", "id"], name="video_text_key"),
            models.Index(fields=["visual_key", "id"], name="video_visual_key"),
            # The few videos with missing media (the /metrics gauge, an operator's list).
            models.Index(fields=["missing_media_changed_at"], condition=~Q(missing_media=[]), name="video_missing_media"),
            # The few videos closed to all but admins while routing waits (``videos_routing_stranded``'s candidates).
            models.Index(fields=["id"], condition=Q(routed_restricted=True), name="video_routed_restricted"),
            # The few videos still on their way to the review queues or stopped in the pipeline (the queue list's
            # "N still being processed": ``review_videos_in_pipeline``); the ready ones, nearly all, are not in it.
            models.Index(
                fields=["id"],
                condition=Q(status__in=["uploaded", "processing", "failed"]) | Q(status="ready", stage="inference"),
                name="video_in_pipeline",
            ),
            # The videos out of the media pipeline, nearly all, by id (``videos_missing_auto_decision``: the ops
            # page's half-decided check walks them beside the decisions): read from this index alone, not from the
            # table's wide rows (at 100,000 videos 275 pages, was 3,310).
            models.Index(fields=["id"], condition=~Q(status__in=["uploaded", "processing"]), name="video_settled"),
        ]  # fmt: skip
        permissions = [
            ("upload_video", "Can upload and ingest videos"),
            ("review_video", "Can work review queues"),
            ("edit_policy", "Can edit policy rubrics"),
        ]

    def __str__(self) -> str:
        return self.title or f"video {self.pk}"


class Keyframe(models.Model):
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="keyframes")
    index = models.PositiveIntegerField()
    timestamp = models.FloatField(help_text="seconds from the start")
    image = models.ImageField(upload_to="keyframes/", max_length=500)
    score = models.FloatField(default=0.0)
    selected = models.BooleanField(default=False)
    # Size of the stored thumbnail: patch and OCR boxes are in its pixels.
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    ocr_done = models.BooleanField(default=False)
    ocr_text = models.TextField(blank=True)
    pdq_hash = models.CharField(max_length=64, blank=True)
    pdq_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    embedding = VectorField(dimensions=FRAME_EMBEDDING_DIM, null=True, blank=True)

    class Meta:
        ordering = ["video", "index"]
        constraints = [models.UniqueConstraint(fields=["video", "index"], name="uniq_keyframe_index")]
        # No HNSW index on ``embedding`` by default (migration 0029): retrieval reads one vector per video
        # (``Video.visual_embedding``); ``manage.py repro_keyframe_index create`` builds it for
        # REPRO_FRAME_NEIGHBOURS keyframes / both, which otherwise scan every keyframe row (exact, slow).

    def __str__(self) -> str:
        return f"keyframe {self.index} of video {self.video_id}"


class OcrBox(models.Model):
    """One line of on-screen text found on a keyframe; the box is in the keyframe image's pixels."""

    keyframe = models.ForeignKey(Keyframe, on_delete=models.CASCADE, related_name="ocr_boxes")
    index = models.PositiveSmallIntegerField()
    text = models.TextField()
    confidence = models.FloatField()
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.IntegerField()
    h = models.IntegerField()

    class Meta:
        ordering = ["keyframe", "index"]
        constraints = [models.UniqueConstraint(fields=["keyframe", "index"], name="uniq_ocrbox_index")]

    def __str__(self) -> str:
        return f"{self.text[:40]} @ {self.x},{self.y}"


class Patch(models.Model):
    """A salient region of a selected keyframe (BLM-Guard patch evidence, cited as ``[patch:ID]``)."""

    class Method(models.TextChoices):
        VIT = "vit", "ViT patch-embedding norm"
        OCR = "ocr", "On-screen text box"

    keyframe = models.ForeignKey(Keyframe, on_delete=models.CASCADE, related_name="patches")
    rank = models.PositiveSmallIntegerField(help_text="0 = most salient")
    method = models.CharField(max_length=10, choices=Method.choices)
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.IntegerField()
    h = models.IntegerField()
    score = models.FloatField()
    label = models.TextField(blank=True, help_text="the text inside an OCR box")

    class Meta:
        ordering = ["keyframe", "rank"]
        constraints = [models.UniqueConstraint(fields=["keyframe", "rank"], name="uniq_patch_rank")]

    def __str__(self) -> str:
        return f"patch {self.pk} ({self.method}) of keyframe {self.keyframe_id}"


class TranscriptSegment(models.Model):
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    start = models.FloatField()
    end = models.FloatField()
    text = models.TextField()

    class Meta:
        ordering = ["video", "index"]
        constraints = [models.UniqueConstraint(fields=["video", "index"], name="uniq_segment_index")]

    def __str__(self) -> str:
        return f"{self.start:.1f}-{self.end:.1f}s: {self.text[:40]}"
