from django.db import migrations, models


class Migration(migrations.Migration):
    """Finished Tag2CoT tasks are SFT records and DPO pairs of their own source ("tag2cot"). Choices only: the
    database is not changed (the column is the same varchar), so rows built before are untouched."""

    dependencies = [
        ("training", "0010_evaluationrun_file_stat"),
    ]

    operations = [
        migrations.AlterField(
            model_name="preferencepair",
            name="source",
            field=models.CharField(
                choices=[
                    ("override", "Reviewer override"),
                    ("correction", "Labeler CoT correction"),
                    ("tag2cot", "Finished Tag2CoT reasoning"),
                    ("adjudication", "Adjudicated user-feedback disagreement"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="sftrecord",
            name="source",
            field=models.CharField(
                choices=[
                    ("correction", "Accepted CoT correction"),
                    ("tag2cot", "Finished Tag2CoT reasoning"),
                    ("confirmed", "Model CoT a reviewer confirmed"),
                ],
                max_length=20,
            ),
        ),
    ]
