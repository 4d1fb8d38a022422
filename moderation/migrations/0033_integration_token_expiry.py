"""Integration tokens expire. Tokens issued before this keep working for one lifetime from now
(INTEGRATION_TOKEN_LIFETIME_DAYS) rather than cutting their platforms off at once."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def _expire_in_one_lifetime(apps, schema_editor):  # type: ignore[no-untyped-def]
    Integration = apps.get_model("moderation", "Integration")
    Integration.objects.filter(token_expires_at__isnull=True).update(
        token_expires_at=timezone.now() + timedelta(days=settings.INTEGRATION_TOKEN_LIFETIME_DAYS)
    )


class Migration(migrations.Migration):
    dependencies = [("moderation", "0032_distinct_embedding_vectors")]

    operations = [
        migrations.AddField(model_name="integration", name="token_expires_at", field=models.DateTimeField(null=True)),
        migrations.RunPython(_expire_in_one_lifetime, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="integration",
            name="token_expires_at",
            field=models.DateTimeField(
                help_text="the token is refused (401) from then on; rotating it gives a new one (INTEGRATION_TOKEN_LIFETIME_DAYS)"
            ),
        ),
        migrations.AlterField(
            model_name="integration",
            name="is_active",
            field=models.BooleanField(default=True, help_text="off: its token is refused and no webhook is sent"),
        ),
    ]
