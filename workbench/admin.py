"""Django admin: the Content-Security-Policy violations browsers reported, and users' API tokens listed by their first characters, with when each expires. Only a hash of each key
is stored, so the admin can list and delete tokens but not make one (a user makes theirs on the API token page);
DRF's own token admin, which made and listed keys in clear, is removed."""

from __future__ import annotations

from typing import Any

import rest_framework.authtoken.admin  # noqa: F401  (registers DRF's token admin now, so it can be removed below)
from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from workbench.models import ApiToken, CspViolation


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    # The label given when it was issued (a service account's "nightly ingest script"): the list named none.
    list_display = ("prefix", "label", "user", "scope", "created", "expires_at")
    search_fields = ("prefix", "label", "user__username")
    readonly_fields = ("user", "label", "prefix", "scope", "created", "expires_at")
    exclude = ("key_hash",)
    list_select_related = ("user",)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(CspViolation)
class CspViolationAdmin(admin.ModelAdmin):
    """What browsers reported the Content-Security-Policy refused (``workbench.csp_reports``), a row per kind per day:
    read only (a browser wrote it); old rows may be deleted."""

    list_display = ("last_seen", "directive", "blocked", "document_path", "disposition", "count", "day")
    list_filter = ("day", "directive", "disposition")
    search_fields = ("blocked", "document_path")
    ordering = ("-last_seen", "-pk")
    date_hierarchy = "day"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


admin.site.unregister(TokenProxy)
