import pgvector.django.halfvec
import pgvector.django.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0025_tag_source_related'),
    ]

    operations = [
        migrations.AddField(
            model_name='video',
            name='visual_embedding',
            field=pgvector.django.halfvec.HalfVectorField(blank=True, dimensions=512, null=True),
        ),
        # Both vectors stay in the row (1.5 + 1 kB): past 2 kB PostgreSQL would move the larger, the transcript's,
        # out of line, and every distance a scan computes from the table would read TOAST pages.
        migrations.RunSQL(
            "ALTER TABLE moderation_video ALTER COLUMN text_embedding SET STORAGE PLAIN,"
            " ALTER COLUMN visual_embedding SET STORAGE PLAIN",
            reverse_sql="ALTER TABLE moderation_video ALTER COLUMN text_embedding SET STORAGE EXTERNAL,"
            " ALTER COLUMN visual_embedding SET STORAGE EXTERNAL",
        ),
        migrations.AddIndex(
            model_name='video',
            index=pgvector.django.indexes.HnswIndex(ef_construction=64, fields=['visual_embedding'], m=16, name='video_visual_embedding_hnsw', opclasses=['halfvec_cosine_ops']),
        ),
    ]
