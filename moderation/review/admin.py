"""Admin for review queues and the read-only audit log (the database refuses edits anyway)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from moderation.review.models import AuditEvent, ReviewQueue, ReviewSkip


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "is_active",
        "priority",
        "sla_seconds",
        "required_reviews",
        "gold_rate",
        "model_version",
    ]
    list_filter = ["is_active", "routes_new_decisions"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["allowed_groups"]


@admin.register(ReviewSkip)
class ReviewSkipAdmin(admin.ModelAdmin):
    list_display = ["task", "user", "reason", "at"]
    search_fields = ["reason", "user__username"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type", "at", "actor_name"]
    search_fields = ["actor_name", "object_id", "action"]
    date_hierarchy = "at"
    readonly_fields = ["actor", "actor_name", "action", "object_type", "object_id", "payload", "at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
