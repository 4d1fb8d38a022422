from django.contrib import admin

from moderation.models import (
    Decision,
    DecisionRerun,
    Keyframe,
    ModelVersion,
    Policy,
    PolicyVersion,
    Review,
    ReviewTask,
    Video,
)
from moderation.review.admin import VideosOpenToStaffAdmin  # (importing it registers queues, skips, the audit log)


@admin.register(Video)
class VideoAdmin(VideosOpenToStaffAdmin):
    video_field = "pk"
    list_display = ["id", "title", "status", "stage", "progress", "duration", "created_at"]
    list_filter = ["status", "stage"]
    search_fields = ["title", "sha256", "external_id"]


@admin.register(Decision)
class DecisionAdmin(VideosOpenToStaffAdmin):
    list_display = ["id", "video", "label", "is_violation", "confidence", "model_version", "policy_version"]
    list_filter = ["is_violation", "backend"]
    search_fields = ["label"]  # and a typed id (VideosOpenToStaffAdmin)
    autocomplete_fields = ["video"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    list_display = ["id", "decision", "queue", "slot", "status", "claimed_by", "deadline", "lease_expires_at"]
    list_filter = ["status", "queue", "is_gold"]
    search_fields = ["queue__slug", "decision__label"]  # and a typed id (VideosOpenToStaffAdmin)
    autocomplete_fields = ["decision"]


@admin.register(DecisionRerun)
class DecisionRerunAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    autocomplete_fields = ["decision"]


@admin.register(Review)
class ReviewAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    list_display = ["id", "task", "decision", "reviewer", "label", "created_at"]
    autocomplete_fields = ["task", "decision"]


@admin.register(Keyframe)
class KeyframeAdmin(VideosOpenToStaffAdmin):
    autocomplete_fields = ["video"]


admin.site.register([ModelVersion, Policy, PolicyVersion])
