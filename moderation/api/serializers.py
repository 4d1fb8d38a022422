from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from moderation.integrations.selectors import video_error_for
from moderation.models import Decision, ItemLabel, Keyframe, ModelVersion, PolicyVersion, TranscriptSegment, Video

# Where a video's outcome stands, as the verdict API reports it.
VERDICT_STATUSES = ["processing", "failed", "auto", "in_review", "reviewed", "adjudicated"]


class KeyframeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Keyframe
        fields = ["id", "index", "timestamp", "image", "score", "selected"]


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = TranscriptSegment
        fields = ["id", "index", "start", "end", "text"]


class VideoSerializer(serializers.ModelSerializer):
    # The id the caller knows the video by (``videos_with_external_id``): a platform's own, never another's.
    external_id = serializers.CharField(source="shown_external_id", read_only=True, allow_null=True)
    error = serializers.SerializerMethodField(help_text="why processing or inference failed")

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

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if getattr(instance, "metadata_of_another", False):
            # Another platform sent these bytes first, or the workbench had them (a moderator's upload, an import):
            # the title, description, uploader (a user's handle) and stored name are theirs (``videos_with_external_id``).
            data.update({"title": "", "description": "", "uploader": "", "file": None})
        return data

    def get_error(self, video: Any) -> str:
        """A platform reads the reason without the workbench's own detail (``video_error_for``)."""
        return video_error_for(integration=self.context.get("integration"), video=video)


class VideoTagSerializer(serializers.Serializer):
    """A reviewed content tag of the video (moderation.tagging)."""

    id = serializers.IntegerField(source="tag.id", read_only=True)
    name = serializers.CharField(source="tag.name", read_only=True)
    added_by = serializers.SerializerMethodField(help_text="the reviewer's user name (null for a platform)")
    created_at = serializers.DateTimeField(read_only=True)

    def get_added_by(self, row: Any) -> str | None:
        # A platform is never told which moderator did what (their safety); users of the workbench are.
        if self.context.get("integration") is not None or row.added_by is None:
            return None
        return str(row.added_by.username)


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


@extend_schema_field({"type": "string", "format": "binary"})
class UploadedVideoField(serializers.FileField):
    """A multipart file part. The schema (one component for multipart and JSON) called it a ``uri`` string,
    and a client generated from it sent a URL in JSON: "The submitted data was not a file"."""


class VideoSubmitSerializer(serializers.Serializer):
    file = UploadedVideoField(required=False, help_text="the video (multipart); or give `path`")
    path = serializers.CharField(
        max_length=4000,
        required=False,
        allow_blank=True,
        help_text=(
            "a file on the server inside MEDIA_IMPORT_ROOTS; with an integration token inside its own folder there "
            "(integration-<id>/), a relative path taken in it; a user who does not manage integrations may use any path "
            "there but the integrations' folders"
        ),
    )
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    uploader = serializers.CharField(max_length=200, required=False, allow_blank=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
    comments = serializers.ListField(
        child=serializers.CharField(max_length=5000, allow_blank=True), required=False, max_length=1000
    )

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("file")) == bool((attrs.get("path") or "").strip()):
            raise serializers.ValidationError(
                {"file": "Send exactly one video: a multipart 'file' or a server 'path'."}
            )
        return attrs


class _DuplicateOfSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True, help_text="the video as you know it")


class VideoDuplicateSerializer(VideoSerializer):
    """A submit's answer when the integration sent these bytes before (documentation only: the view adds
    the two fields to the earlier video's ``VideoSerializer`` body)."""

    duplicate_of = _DuplicateOfSerializer(read_only=True)
    detail = serializers.CharField(
        read_only=True,
        help_text="which of this request's fields were not recorded; the video keeps what was sent first",
    )

    class Meta(VideoSerializer.Meta):
        fields = [*VideoSerializer.Meta.fields, "duplicate_of", "detail"]
        read_only_fields = fields


class LabelSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="shown_external_id", read_only=True, allow_null=True)
    policy_version: serializers.StringRelatedField[PolicyVersion] = serializers.StringRelatedField()

    class Meta:
        model = ItemLabel
        fields = ["id", "video", "external_id", "label", "source", "policy_version", "created_at", "updated_at"]
        read_only_fields = fields


class _VerdictDecisionSerializer(serializers.Serializer):
    decision_id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    is_violation = serializers.BooleanField()
    confidence = serializers.FloatField()
    severity = serializers.CharField()
    model_version = serializers.CharField()
    policy_version = serializers.CharField()
    cascade_stage = serializers.IntegerField(allow_null=True)
    parse_error = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class _VerdictReviewSerializer(serializers.Serializer):
    verdict = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    severity = serializers.CharField()
    reviews = serializers.IntegerField()
    settled_label = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField()


class _VerdictAdjudicationSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]
    decided_at = serializers.DateTimeField()


class VerdictSerializer(serializers.Serializer):
    video_id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=VERDICT_STATUSES)
    final = serializers.BooleanField(help_text="nothing more is coming for this video under its policy")
    label = serializers.CharField(allow_null=True, help_text="the label that stands: adjudication > review > model")  # type: ignore[assignment]
    is_violation = serializers.BooleanField(allow_null=True)
    policy_version = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=["model", "review", "adjudication"], allow_null=True)  # type: ignore[assignment]
    error = serializers.CharField(allow_blank=True)
    auto_decision = _VerdictDecisionSerializer(allow_null=True)
    human_review = _VerdictReviewSerializer(allow_null=True)
    adjudication = _VerdictAdjudicationSerializer(allow_null=True)
    open_review_tasks = serializers.IntegerField()


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
