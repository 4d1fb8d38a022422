import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0064_tag_embedding_error'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImpactPreviewRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('content_hash', models.CharField(max_length=64)),
                ('model_version', models.CharField(max_length=100)),
                ('sample_size', models.PositiveIntegerField()),
                ('result', models.JSONField(default=dict)),
                ('latest_decision_id', models.BigIntegerField(blank=True, null=True)),
                ('seconds', models.FloatField(default=0.0)),
                ('computed_at', models.DateTimeField()),
                ('active', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='moderation.policyversion')),
                ('draft', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='moderation.policyversion')),
                ('policy', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='moderation.policy')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('content_hash', 'model_version', 'sample_size'), name='uniq_impact_preview_run')],
            },
        ),
    ]
