"""Retrieval's two HNSW scans walk the distinct embeddings instead of every video's (bench/repro_duplicates.py,
bench/RESULTS.md issue 20): a thousand reposts with one transcript or one picture vector made a clique in the videos'
graphs that hid a copy's nearest other neighbour, its source.

Each video gets the exact keys of its two embeddings (md5 of the vector's text: equal vectors, equal keys), set by a
trigger on every write of an embedding, which also inserts a vector not seen before into ``TranscriptVector`` /
``PictureVector`` (one row per distinct vector, HNSW-indexed); retrieval reaches a vector's videos through the keys'
B-tree indexes. Not atomic, for a large table: the trigger first (new writes are keyed from then on), then the
videos' own HNSW indexes dropped CONCURRENTLY (the backfill rewrites every row, which would insert each into both
graphs again: ~100 min at 200k videos on 2 cores with them; until the new indexes exist the scans read the table),
then the existing videos in batches of 5,000 ids, each its own transaction, then the new HNSW indexes built
CONCURRENTLY over the distinct vectors (the trigger keeps inserting meanwhile). On an empty table it is the schema
alone.
"""

import pgvector.django.halfvec
import pgvector.django.indexes
import pgvector.django.vector
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models, transaction

TRIGGER = """
CREATE OR REPLACE FUNCTION moderation_video_vector_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    text_k uuid := md5(NEW.text_embedding::text)::uuid;  -- NULL for no vector
    picture_k uuid := md5(NEW.visual_embedding::text)::uuid;
BEGIN
    IF text_k IS NOT NULL AND (TG_OP = 'INSERT' OR text_k IS DISTINCT FROM OLD.text_key) THEN
        INSERT INTO moderation_transcriptvector (key, embedding) VALUES (text_k, NEW.text_embedding)
        ON CONFLICT (key) DO NOTHING;
    END IF;
    IF picture_k IS NOT NULL AND (TG_OP = 'INSERT' OR picture_k IS DISTINCT FROM OLD.visual_key) THEN
        INSERT INTO moderation_picturevector (key, embedding) VALUES (picture_k, NEW.visual_embedding)
        ON CONFLICT (key) DO NOTHING;
    END IF;
    NEW.text_key := text_k;
    NEW.visual_key := picture_k;
    RETURN NEW;
END
$$;
CREATE TRIGGER moderation_video_vector_keys
    BEFORE INSERT OR UPDATE OF text_embedding, visual_embedding, text_key, visual_key ON moderation_video
    FOR EACH ROW EXECUTE FUNCTION moderation_video_vector_keys();
"""
TRIGGER_DROP = """
DROP TRIGGER IF EXISTS moderation_video_vector_keys ON moderation_video;
DROP FUNCTION IF EXISTS moderation_video_vector_keys();
"""
BATCH = 5000


def key_existing_videos(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Rewrite the existing videos' embeddings (the same values) in batches of ids: the trigger keys them and
    registers their distinct vectors. Idempotent (a rerun finds every vector registered)."""
    connection = schema_editor.connection
    with connection.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM moderation_video")
        low, high = cur.fetchone()
    if low is None:
        return
    for start in range(low, high + 1, BATCH):
        with transaction.atomic(using=connection.alias), connection.cursor() as cur:
            cur.execute(
                "UPDATE moderation_video SET text_embedding = text_embedding, visual_embedding = visual_embedding"
                " WHERE id >= %s AND id < %s AND (text_embedding IS NOT NULL OR visual_embedding IS NOT NULL)",
                [start, start + BATCH],
            )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("moderation", "0031_external_id_per_integration"),
    ]

    operations = [
        migrations.CreateModel(
            name="PictureVector",
            fields=[
                ("key", models.UUIDField(primary_key=True, serialize=False)),
                ("embedding", pgvector.django.halfvec.HalfVectorField(dimensions=512)),
            ],
        ),
        migrations.CreateModel(
            name="TranscriptVector",
            fields=[
                ("key", models.UUIDField(primary_key=True, serialize=False)),
                ("embedding", pgvector.django.vector.VectorField(dimensions=384)),
            ],
        ),
        migrations.AddField(
            model_name="video",
            name="text_key",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="video",
            name="visual_key",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        # Built while every key is NULL: seconds even on a large table.
        migrations.AddIndex(model_name="video", index=models.Index(fields=["text_key", "id"], name="video_text_key")),
        migrations.AddIndex(
            model_name="video", index=models.Index(fields=["visual_key", "id"], name="video_visual_key")
        ),
        migrations.RunSQL(TRIGGER, reverse_sql=TRIGGER_DROP),
        # Before the backfill: its rewrite of every row would otherwise insert each one into both of these graphs
        # again (measured at 200k videos: 5,000 rows took ~2.5 min with them, the whole table would take ~100 min).
        RemoveIndexConcurrently(model_name="video", name="video_text_embedding_hnsw"),
        RemoveIndexConcurrently(model_name="video", name="video_visual_embedding_hnsw"),
        migrations.RunPython(key_existing_videos, reverse_code=migrations.RunPython.noop),
        AddIndexConcurrently(
            model_name="picturevector",
            index=pgvector.django.indexes.HnswIndex(
                ef_construction=64,
                fields=["embedding"],
                m=16,
                name="picture_vector_hnsw",
                opclasses=["halfvec_cosine_ops"],
            ),  # fmt: skip
        ),
        AddIndexConcurrently(
            model_name="transcriptvector",
            index=pgvector.django.indexes.HnswIndex(
                ef_construction=64,
                fields=["embedding"],
                m=16,
                name="transcript_vector_hnsw",
                opclasses=["vector_cosine_ops"],
            ),  # fmt: skip
        ),
    ]
