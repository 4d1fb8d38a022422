from django.db import migrations, models


class Migration(migrations.Migration):
    """What a token is for, as given when it was issued (``create_api_token --label``): kept on the token, shown in the
    token list; it was only in the audit event's payload. Tokens made before have none ("")."""

    dependencies = [
        ("workbench", "0006_api_token_verbose_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="label",
            field=models.CharField(blank=True, default="", help_text="what the token is for", max_length=200),
        ),
    ]
