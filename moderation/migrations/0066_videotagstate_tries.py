from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0065_impact_preview_run'),
    ]

    operations = [
        migrations.AddField(
            model_name='videotagstate',
            name='candidates_started_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='videotagstate',
            name='candidates_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='videotagstate',
            name='vlm_started_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='videotagstate',
            name='vlm_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name='videotagstate',
            index=models.Index(condition=models.Q(('candidates_started_at__isnull', False)), fields=['candidates_started_at'], name='tag_candidates_running'),
        ),
        migrations.AddIndex(
            model_name='videotagstate',
            index=models.Index(condition=models.Q(('vlm_started_at__isnull', False)), fields=['vlm_started_at'], name='tag_vlm_running'),
        ),
    ]
