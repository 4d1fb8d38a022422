"""The workbench's own rows: when each user's API token expires."""

from __future__ import annotations

from django.db import models
from rest_framework.authtoken.models import Token


class ApiTokenExpiry(models.Model):
    """When a user's API token (DRF's ``Token``, ``Authorization: Token <key>``) stops being accepted. A token
    without this row (one an admin made in Django's admin) expires API_TOKEN_LIFETIME_DAYS after it was made."""

    token = models.OneToOneField(Token, primary_key=True, on_delete=models.CASCADE, related_name="expiry")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.token_id[:8]}… expires {self.expires_at:%Y-%m-%d %H:%M}"
