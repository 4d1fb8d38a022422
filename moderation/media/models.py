from __future__ import annotations

from django.conf import settings
from django.db import models


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
        ASR = "asr", "Speech to text"
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

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPLOADED, db_index=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    language = models.CharField(max_length=16, blank=True)
    # On-screen text and speech given with the item (imports); the pipeline's own results live in
    # Keyframe/TranscriptSegment rows.
    ocr_text = models.TextField(blank=True)
    asr_text = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
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

    class Meta:
        ordering = ["video", "index"]
        constraints = [models.UniqueConstraint(fields=["video", "index"], name="uniq_keyframe_index")]

    def __str__(self) -> str:
        return f"keyframe {self.index} of video {self.video_id}"


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
