"""One globally serving model at most: two promotions at once had left two versions marked serving. Where that
happened, the one ``model_version_serving`` already served (the newest) keeps serving; the others stop, before the
database holds the rule."""

from django.db import migrations, models


def keep_the_newest_serving(apps, schema_editor):
    ModelVersion = apps.get_model("moderation", "ModelVersion")
    serving = list(ModelVersion.objects.filter(is_serving=True).order_by("-created_at").values_list("pk", flat=True))
    if len(serving) > 1:
        ModelVersion.objects.filter(pk__in=serving[1:]).update(is_serving=False)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0055_video_names_without_bidi_controls")]

    operations = [
        migrations.RunPython(keep_the_newest_serving, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_serving", True)), fields=("is_serving",), name="one_serving_model"
            ),
        ),
    ]
