"""Users' API tokens expire. Tokens issued before this keep working for one lifetime from now
(API_TOKEN_LIFETIME_DAYS) rather than cutting their scripts off at once."""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def _expire_in_one_lifetime(apps, schema_editor):  # type: ignore[no-untyped-def]
    Token = apps.get_model("authtoken", "Token")
    ApiTokenExpiry = apps.get_model("workbench", "ApiTokenExpiry")
    expires_at = timezone.now() + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    ApiTokenExpiry.objects.bulk_create(
        [ApiTokenExpiry(token_id=key, expires_at=expires_at) for key in Token.objects.values_list("key", flat=True)],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [("workbench", "0001_pgvector"), ("authtoken", "0004_alter_tokenproxy_options")]

    operations = [
        migrations.CreateModel(
            name="ApiTokenExpiry",
            fields=[
                (
                    "token",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="expiry",
                        serialize=False,
                        to="authtoken.token",
                    ),
                ),
                ("expires_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(_expire_in_one_lifetime, migrations.RunPython.noop),
    ]
