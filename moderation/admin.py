from django.contrib import admin

import moderation.review.admin  # noqa: F401  (registers queues, skips and the audit log)
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


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "status", "stage", "progress", "duration", "created_at"]
    list_filter = ["status", "stage"]
    search_fields = ["title", "sha256", "external_id"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["id", "video", "label", "is_violation", "confidence", "model_version", "policy_version"]
    list_filter = ["is_violation", "backend"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "decision", "queue", "slot", "status", "claimed_by", "deadline", "lease_expires_at"]
    list_filter = ["status", "queue", "is_gold"]


admin.site.register([DecisionRerun, Keyframe, ModelVersion, Policy, PolicyVersion, Review])
