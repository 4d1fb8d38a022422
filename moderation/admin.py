from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

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
from workbench.text import plain_name


@admin.register(Video)
class VideoAdmin(VideosOpenToStaffAdmin):
    video_field = "pk"
    list_display = ["id", "title", "status", "stage", "progress", "duration", "created_at"]
    list_filter = ["status", "stage"]
    search_fields = ["title", "sha256", "external_id"]
    autocomplete_fields = ["created_by", "failure_dismissed_by"]


@admin.register(Decision)
class DecisionAdmin(VideosOpenToStaffAdmin):
    list_display = ["id", "video", "label", "is_violation", "confidence", "model_version", "policy_version"]
    list_filter = ["is_violation", "backend"]
    search_fields = ["label"]  # and a typed id (VideosOpenToStaffAdmin)
    autocomplete_fields = ["video", "policy_version", "model_version"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    list_display = ["id", "decision", "queue", "slot", "status", "claimed_by", "deadline", "lease_expires_at"]
    list_filter = ["status", "queue", "is_gold"]
    search_fields = ["queue__slug", "decision__label"]  # and a typed id (VideosOpenToStaffAdmin)
    autocomplete_fields = ["decision", "queue", "claimed_by"]


@admin.register(DecisionRerun)
class DecisionRerunAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    autocomplete_fields = ["decision", "requested_by"]


@admin.register(Review)
class ReviewAdmin(VideosOpenToStaffAdmin):
    video_field = "decision__video_id"
    list_display = ["id", "task", "decision", "reviewer", "label", "created_at"]
    autocomplete_fields = ["task", "decision", "reviewer", "policy_version"]


@admin.register(Keyframe)
class KeyframeAdmin(VideosOpenToStaffAdmin):
    autocomplete_fields = ["video"]


# Chosen on other forms by search (autocomplete_fields), so each says what a search matches.


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "is_serving", "created_at"]
    list_filter = ["backend", "is_serving"]
    search_fields = ["name", "base_model"]
    ordering = ["-created_at"]


class PolicyAdminForm(forms.ModelForm):
    """A policy's name (on every decision, queue and editor screen) is stored without bidi controls or characters drawn as nothing (``plain_name``)."""

    class Meta:
        model = Policy
        fields = ["slug", "name", "auto_apply", "serving_model"]

    def clean_name(self) -> str:
        return plain_name(self.cleaned_data["name"]).strip()


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyAdminForm
    list_display = ["name", "slug", "auto_apply", "serving_model"]
    search_fields = ["name", "slug"]
    ordering = ["name"]
    autocomplete_fields = ["serving_model"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "is_active", "created_at"]
    list_filter = ["status", "is_active"]
    search_fields = ["policy__name", "policy__slug", "=number"]
    ordering = ["policy__name", "-number"]
    autocomplete_fields = ["policy", "created_by"]
    # Publishing and making a version active go through the policy screens (policy_version_publish: the
    # stale-draft rule, the audit log); the admin shows these fields but does not change them.
    readonly_fields = ["status", "is_active", "based_on", "publish_note"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicyVersion]:
        # Its name is its policy's ("Ads v3"): one query for a list or a search, not one per row.
        return super().get_queryset(request).select_related("policy")
