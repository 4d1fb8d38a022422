from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from moderation.models import Decision, Keyframe, ModelVersion, PolicyVersion, TranscriptSegment, Video


class KeyframeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Keyframe
        fields = ["id", "index", "timestamp", "image", "score", "selected"]


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = TranscriptSegment
        fields = ["id", "index", "start", "end", "text"]


class VideoSerializer(serializers.ModelSerializer):
    class Meta:
        model = Video
        fields = [
            "id",
            "title",
            "description",
            "uploader",
            "external_id",
            "file",
            "sha256",
            "size_bytes",
            "duration",
            "fps",
            "width",
            "height",
            "video_codec",
            "audio_codec",
            "has_audio",
            "status",
            "stage",
            "progress",
            "error",
            "language",
            "created_at",
        ]
        read_only_fields = fields


class VideoTagSerializer(serializers.Serializer):
    """A reviewed content tag of the video (moderation.tagging)."""

    id = serializers.IntegerField(source="tag.id", read_only=True)
    name = serializers.CharField(source="tag.name", read_only=True)
    added_by = serializers.CharField(source="added_by.username", read_only=True, allow_null=True, default=None)
    created_at = serializers.DateTimeField(read_only=True)


class TagSuggestionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tag.id", read_only=True)
    name = serializers.CharField(source="tag.name", read_only=True)
    score = serializers.FloatField(read_only=True)
    sources = serializers.ListField(child=serializers.CharField(), read_only=True)


class VideoDetailSerializer(VideoSerializer):
    keyframes = KeyframeSerializer(many=True, read_only=True)
    segments = SegmentSerializer(many=True, read_only=True)
    tags = VideoTagSerializer(many=True, read_only=True)
    tag_suggestions = serializers.SerializerMethodField()

    class Meta(VideoSerializer.Meta):
        fields = [*VideoSerializer.Meta.fields, "keyframes", "segments", "tags", "tag_suggestions"]

    @extend_schema_field(TagSuggestionSerializer(many=True))
    def get_tag_suggestions(self, video: Any) -> list[dict[str, Any]]:
        """The ten best ranked suggestions (not yet reviewed tags)."""
        rows = video.tag_suggestions.select_related("tag").order_by("-score", "tag_id")[:10]
        return TagSuggestionSerializer(rows, many=True).data  # type: ignore[return-value]


class VideoUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    uploader = serializers.CharField(max_length=200, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)


class DecisionSerializer(serializers.ModelSerializer):
    policy_version: serializers.StringRelatedField[PolicyVersion] = serializers.StringRelatedField()
    model_version: serializers.StringRelatedField[ModelVersion] = serializers.StringRelatedField()

    class Meta:
        model = Decision
        fields = [
            "id",
            "video",
            "policy_version",
            "model_version",
            "backend",
            "label",
            "is_violation",
            "confidence",
            "scene",
            "severity",
            "cot",
            "parse_error",
            "latency_ms",
            "prompt_tokens",
            "completion_tokens",
            "created_at",
        ]
        read_only_fields = fields
