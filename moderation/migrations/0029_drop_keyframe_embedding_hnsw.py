"""The per-keyframe HNSW index goes: retrieval reads one vector per video (``Video.visual_embedding``, 0026), and the
index cost an HNSW insert per keyframe row (8 per video) and ~2.7 kB per row (~4.4 GB at 200k videos). The old
channel (REPRO_FRAME_NEIGHBOURS keyframes / both) still works: it scans every keyframe row unless an operator
builds the index again with ``manage.py repro_keyframe_index create`` (bench/RESULTS.md, issue 20)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("moderation", "0028_tag_import"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="keyframe", name="keyframe_embedding_hnsw"),
    ]
