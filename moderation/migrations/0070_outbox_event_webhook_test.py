from django.db import migrations, models


class Migration(migrations.Migration):
    """The ``webhook.test`` event type (an endpoint page's "Send a test event"): choices only, no SQL."""

    dependencies = [
        ("moderation", "0069_restricted_disagreements_own_adjudication"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboxevent",
            name="type",
            field=models.CharField(
                choices=[
                    ("decision.created", "A model decided a video"),
                    ("review.completed", "A reviewer submitted a verdict"),
                    ("label.final", "A video's trusted label was settled (review or adjudication)"),
                    ("tags.final", "A video's content tags were finalised"),
                    ("model.promoted", "A model version now serves new decisions"),
                    ("webhook.test", "A test sent from an endpoint's page"),
                ],
                max_length=40,
            ),
        ),
    ]
