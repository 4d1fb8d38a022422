"""Django admin: users' API tokens listed with when each expires (DRF's token admin, one column more)."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from workbench.tokens import api_token_expires_at


class ExpiringTokenAdmin(TokenAdmin):
    list_display = ("key", "user", "created", "expires")
    autocomplete_fields = ("user",)  # a search, not a <select> of every account

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).select_related("expiry")

    @admin.display(description="expires")
    def expires(self, token: TokenProxy) -> datetime:
        return api_token_expires_at(token)


admin.site.unregister(TokenProxy)
admin.site.register(TokenProxy, ExpiringTokenAdmin)
