"""A Tag2CoT task's claim is a lease (taken with a button, released, lapsing), as a review item's: opening the
task's page claimed it for good."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_correction_review"),
    ]

    operations = [
        migrations.AddField(
            model_name="tag2cottask",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="tag2cottask",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
