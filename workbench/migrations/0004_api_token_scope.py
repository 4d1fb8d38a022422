"""Users' API tokens get a scope: ``read`` (safe methods only) or ``write``. Every token already out is ``write``,
what it could do before, so no script stops working."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workbench", "0003_api_tokens_hashed"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read only (GET, HEAD, OPTIONS)"), ("write", "Read and write")],
                default="write",
                max_length=5,
            ),
        ),
    ]
