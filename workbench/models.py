"""The workbench's own rows: users' API tokens, kept as a hash."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A user's API token (``Authorization: Token <key>``): only the key's SHA-256 (``key_hash``) and its first
    characters (``prefix``, to name it on the page and in the audit log) are stored; the key itself is shown once,
    when it is made. Refused from ``expires_at`` on (API_TOKEN_LIFETIME_DAYS after it was made).

    ``scope`` bounds what it may do beyond its user's role: ``read`` only the safe methods (GET, HEAD, OPTIONS),
    ``write`` everything the role may (every token made before scopes existed is ``write``: it keeps working)."""

    class Scope(models.TextChoices):
        READ = "read", "Read only (GET, HEAD, OPTIONS)"
        WRITE = "write", "Read and write"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.WRITE)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.scope}) expires {self.expires_at:%Y-%m-%d %H:%M}"
