"""Users' API tokens are kept as a hash: the SHA-256 of each key (as integration tokens are), with its first
characters to name it. Every token handed out before keeps working until it expires (its expiry, or one lifetime
after it was made): its key is hashed into the new table and DRF's row, which held the key in clear, is deleted."""

import hashlib
from datetime import timedelta
from typing import Any

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def hash_tokens(Token: Any, ApiToken: Any, expires_at_of: Any) -> int:  # noqa: N803 (models, as RunPython passes)
    """Move every DRF ``Token`` to ``ApiToken`` as a hash, then delete the clear rows. ``expires_at_of(token)`` says
    when each one stops being accepted. Returns how many moved."""
    moved = [
        ApiToken(
            user_id=token.user_id,
            key_hash=hashlib.sha256(token.key.encode()).hexdigest(),
            prefix=token.key[:8],
            created=token.created,
            expires_at=expires_at_of(token),
        )
        for token in Token.objects.all()
    ]
    ApiToken.objects.bulk_create(moved, batch_size=1000)
    Token.objects.all().delete()
    return len(moved)


def _forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("workbench", "ApiToken")
    ApiTokenExpiry = apps.get_model("workbench", "ApiTokenExpiry")
    expiries = dict(ApiTokenExpiry.objects.values_list("token_id", "expires_at"))
    lifetime = timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    hash_tokens(Token, ApiToken, lambda token: expiries.get(token.key) or token.created + lifetime)


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0002_api_token_expiry"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key_hash", models.CharField(max_length=64, unique=True)),
                ("prefix", models.CharField(max_length=8)),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_token",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        # No way back: the clear keys are gone (that is the point).
        migrations.RunPython(_forwards, migrations.RunPython.noop),
        migrations.DeleteModel(name="ApiTokenExpiry"),
    ]
