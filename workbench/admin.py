"""Django admin: users' API tokens listed by their first characters, with when each expires. Only a hash of each key
is stored, so the admin can list and delete tokens but not make one (a user makes theirs on the API token page);
DRF's own token admin, which made and listed keys in clear, is removed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from workbench.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "scope", "created", "expires_at")
    search_fields = ("prefix", "user__username")
    readonly_fields = ("user", "prefix", "scope", "created", "expires_at")
    exclude = ("key_hash",)
    list_select_related = ("user",)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
