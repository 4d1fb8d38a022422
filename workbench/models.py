"""The workbench's own rows: users' API tokens, kept as a hash, and the Content-Security-Policy violations browsers
reported."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A user's API token (``Authorization: Token <key>``): only the key's SHA-256 (``key_hash``) and its first
    characters (``prefix``, to name it on the page and in the audit log) are stored; the key itself is shown once,
    when it is made. Refused from ``expires_at`` on (API_TOKEN_LIFETIME_DAYS after it was made).

    ``scope`` bounds what it may do beyond its user's role: ``read`` only the safe methods (GET, HEAD, OPTIONS),
    ``write`` everything the role may (every token made before scopes existed is ``write``: it keeps working).

    ``label``: what the token is for, as given when it was issued (``manage.py create_api_token --label``), shown in
    the admin's token list and on the user's page; it was only in the audit event's payload, so a list of service
    accounts' tokens named none of them."""

    class Scope(models.TextChoices):
        READ = "read", "Read only (GET, HEAD, OPTIONS)"
        WRITE = "write", "Read and write"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.WRITE)
    label = models.CharField(max_length=200, blank=True, default="", help_text="what the token is for")

    class Meta:
        # Django's own from the class name read "Api token" / "Api tokens" in the admin.
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        label = f" “{self.label}”" if self.label else ""
        return f"{self.prefix}…{label} ({self.scope}) expires {self.expires_at:%Y-%m-%d %H:%M}"


class CspViolation(models.Model):
    """What browsers reported the Content-Security-Policy refused (``workbench.csp_reports``), folded per day: one row
    per (day, directive, blocked URI, document path), with how many reports said it (``count``), so a flood of one
    violation is one row. What a browser sent is anyone's to write: trimmed, stored as text, shown escaped."""

    class Disposition(models.TextChoices):
        ENFORCE = "enforce", "Blocked"
        REPORT = "report", "Reported only"

    day = models.DateField()
    directive = models.CharField(max_length=64, help_text="the directive that refused it (effective-directive)")
    blocked = models.CharField(
        max_length=300, help_text="what was refused: 'inline', 'eval', or a URL's origin and path (no query)"
    )
    document_path = models.CharField(max_length=300, help_text="the page's path (no host, no query)")
    disposition = models.CharField(max_length=7, choices=Disposition.choices, default=Disposition.ENFORCE)
    count = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "CSP violation"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "directive", "blocked", "document_path"], name="csp_violation_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.directive} refused {self.blocked} on {self.document_path} ({self.count}× on {self.day})"
