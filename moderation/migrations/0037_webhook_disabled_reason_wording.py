"""Endpoints disabled before the wording was fixed say "Disabled after N consecutive failed deliveries", but N
counts failed attempts (every delivery's retries), as the reason written since says: "Disabled after N failed
attempts in a row". The stored reasons are reworded the same way; nothing else about them changes."""

from django.db import migrations

OLD = " consecutive failed deliveries"
NEW = " failed attempts in a row"


def reword_disabled_reasons(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.db.models import Value
    from django.db.models.functions import Replace

    endpoint = apps.get_model("moderation", "WebhookEndpoint")
    endpoint.objects.filter(disabled_reason__startswith="Disabled after ", disabled_reason__contains=OLD).update(
        disabled_reason=Replace("disabled_reason", Value(OLD), Value(NEW))
    )


class Migration(migrations.Migration):
    dependencies = [("moderation", "0036_policy_version_based_on")]

    operations = [migrations.RunPython(reword_disabled_reasons, migrations.RunPython.noop)]
