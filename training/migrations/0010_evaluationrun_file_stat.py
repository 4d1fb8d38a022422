from django.db import migrations, models


class Migration(migrations.Migration):
    """A KuaiMod file's stat on its evaluation run: a start of the same file joins the open run by it, and the
    worker hashes the file (it was hashed in the web request). Runs made before keep an empty one (and their key)."""

    dependencies = [
        ("training", "0009_shadowdecision_started_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluationrun",
            name="file_stat",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
    ]
