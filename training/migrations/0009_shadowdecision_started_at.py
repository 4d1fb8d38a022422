from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0008_shadowdecision_retries'),
    ]

    operations = [
        migrations.AddField(
            model_name='shadowdecision',
            name='started_at',
            field=models.DateTimeField(blank=True, help_text='a try is running since then; empty: none runs (decided, or failed)', null=True),
        ),
        migrations.AddIndex(
            model_name='shadowdecision',
            index=models.Index(condition=models.Q(('started_at__isnull', False)), fields=['started_at'], name='shadow_try_running'),
        ),
    ]
