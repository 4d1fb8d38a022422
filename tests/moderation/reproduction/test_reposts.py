"""Retrieval in a library full of reposts: hundreds of videos sharing one transcript and one picture vector must
neither hide a copy's source from the embedding scans nor be lost themselves (bench/repro_duplicates.py)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
from django.db import connection

from moderation.media.models import Video
from moderation.reproduction import selectors, services
from moderation.reproduction.models import PictureVector, TranscriptVector
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def _unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in v / np.linalg.norm(v)]


def _near(v: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at cosine ``cos`` from the unit vector ``v``."""
    noise = rng.normal(size=v.shape[0])
    noise -= (noise @ v) * v
    return cos * v + np.sqrt(1 - cos * cos) * noise / np.linalg.norm(noise)


@contextmanager
def _hnsw_built_after() -> Iterator[None]:
    """Drop the HNSW indexes (but the on-demand keyframe one) for the block and build them again after it, from its
    live rows, as after a bulk load: faster than inserting into them, and earlier tests' rolled-back rows, dead
    entries in them until a vacuum, are left out (see test_neighbours_filtered). Rolled back with the test."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE a.amname = 'hnsw' AND t.relname <> 'moderation_keyframe'"
        )
        indexes = cur.fetchall()
        for name, _sql in indexes:
            cur.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no index is built over pending foreign-key checks
        for _name, sql in indexes:
            cur.execute(sql)
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def _copies_of(video_id: int, n: int) -> list[int]:
    """``n`` new videos like ``video_id`` (one statement: the ORM's bulk insert of a video costs ~1.5 ms), by id."""
    columns = ", ".join(f'"{f.column}"' for f in Video._meta.concrete_fields if not f.primary_key)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO moderation_video ({columns}) SELECT {columns} FROM moderation_video, generate_series(1, %s)"
            " WHERE id = %s RETURNING id",
            [n, video_id],
        )
        return sorted(row[0] for row in cur.fetchall())


def _library(*, library: int, reposts: int) -> dict[str, object]:
    """``library`` unrelated videos, then (through the live indexes, as videos become ready) ``reposts`` videos with
    one transcript and one picture vector, a source near both (cosine 0.95 and 0.9), its copy (transcript cosine
    0.99 to the source's, picture 0.97) and one more repost."""
    rng = np.random.default_rng(20)
    text, picture = np.array(_unit(rng.normal(size=384))), np.array(_unit(rng.normal(size=512)))
    ids = _copies_of(Video.objects.create(title="library", status=Video.Status.READY).pk, library + reposts)
    # Random directions, made in the statement (per row: the subquery names the row).
    with _hnsw_built_after(), connection.cursor() as cur:
        cur.execute(
            "SELECT setseed(0.2); UPDATE moderation_video SET"
            " text_embedding = (SELECT array_agg(random() - 0.5) FROM generate_series(1, 384) WHERE id > 0)::vector,"
            " visual_embedding = (SELECT array_agg(random() - 0.5) FROM generate_series(1, 512) WHERE id > 0)::halfvec"
            " WHERE id = ANY(%s)",
            [ids[:library]],
        )
    with connection.cursor() as cur:  # one row at a time, through the live indexes
        cur.execute(
            "UPDATE moderation_video SET text_embedding = %s::vector, visual_embedding = %s::halfvec WHERE id = ANY(%s)",
            [str(_unit(text)), str(_unit(picture)), ids[library:]],
        )
    farm = ids[library:]
    source_text, source_picture = _near(text, 0.95, rng), _near(picture, 0.9, rng)
    source = Video.objects.create(
        title="source", status=Video.Status.READY, text_embedding=_unit(source_text),
        visual_embedding=_unit(source_picture),
    )  # fmt: skip
    copy = Video.objects.create(
        title="copy", status=Video.Status.READY, text_embedding=_unit(_near(source_text, 0.99, rng)),
        visual_embedding=_unit(_near(source_picture, 0.97, rng)),
    )  # fmt: skip
    repost = Video.objects.create(
        title="one more repost", status=Video.Status.READY, text_embedding=list(text), visual_embedding=list(picture)
    )
    return {"farm": farm, "source": source.pk, "copy": copy.pk, "repost": repost.pk}


def _neighbours(video_id: int) -> selectors.Neighbours:
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")  # the HNSW scans, as on a large table
    try:
        return selectors.video_neighbours(
            video_id=video_id, k_text=services.TOP_K, k_videos=services.VIDEO_K, channel="video"
        )
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET enable_seqscan")


def test_a_farm_of_identical_reposts_hides_neither_a_copys_source_nor_itself() -> None:
    lib = _library(library=300, reposts=400)
    farm = set(lib["farm"])  # type: ignore[arg-type]

    found = _neighbours(lib["copy"])  # type: ignore[arg-type]
    # The copy's nearest transcript and picture are its source's (0.99, 0.97); the reposts come next (~0.94, ~0.87).
    assert found.text[0][0] == lib["source"] and found.videos[0][0] == lib["source"]
    assert {v for v, _ in found.text[1:]} <= farm and len(found.text) == services.TOP_K
    assert {v for v, _ in found.videos[1:]} <= farm and len(found.videos) == services.VIDEO_K

    # A new repost finds as many of the farm as asked, identical (similarity 1), the earliest uploads first.
    again = _neighbours(lib["repost"])  # type: ignore[arg-type]
    assert [v for v, _ in again.text] == sorted(farm)[: services.TOP_K]
    assert [v for v, _ in again.videos] == sorted(farm)[: services.VIDEO_K]
    assert min(s for _v, s in again.text + again.videos) > 0.999

    candidates = services.candidates_retrieve(video_id=lib["copy"])  # type: ignore[arg-type]
    assert next(iter(candidates)) == lib["source"]


def test_rewritten_and_deleted_reposts_leave_the_scans_whole() -> None:
    """Dead index entries: the farm taken down, reposted again, and every video's embeddings rewritten twice (two
    full rebuilds), no vacuum in between (this transaction's old row versions are what a vacuum has not removed)."""
    lib = _library(library=300, reposts=200)
    Video.objects.filter(pk__in=lib["farm"]).delete()  # type: ignore[misc]
    farm = _copies_of(lib["source"], 200)  # type: ignore[arg-type]
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE moderation_video v SET text_embedding = r.text_embedding, visual_embedding = r.visual_embedding"
            " FROM moderation_video r WHERE r.id = %s AND v.id = ANY(%s)",
            [lib["repost"], farm],
        )
        for _ in range(2):
            cur.execute(
                "UPDATE moderation_video SET text_embedding = text_embedding, visual_embedding = visual_embedding"
            )

    found = _neighbours(lib["copy"])  # type: ignore[arg-type]
    assert found.text[0][0] == lib["source"] and found.videos[0][0] == lib["source"]
    again = _neighbours(lib["repost"])  # type: ignore[arg-type]
    assert [v for v, _ in again.text] == sorted(farm)[: services.TOP_K]


def test_the_keys_follow_every_write_and_a_full_rebuild_sweeps_vectors_no_video_holds() -> None:
    rng = np.random.default_rng(22)
    first, second, picture = _unit(rng.normal(size=384)), _unit(rng.normal(size=384)), _unit(rng.normal(size=512))
    a = VideoFactory(text_embedding=first, visual_embedding=picture)
    b = VideoFactory(text_embedding=first)
    silent = VideoFactory(text_embedding=None)
    a.refresh_from_db()
    b.refresh_from_db()
    silent.refresh_from_db()
    assert a.text_key is not None and a.text_key == b.text_key and a.visual_key is not None
    assert silent.text_key is None and silent.visual_key is None
    assert TranscriptVector.objects.filter(key=a.text_key).count() == 1  # one row for the two videos

    stale = Video.objects.get(pk=a.pk)
    stale.text_embedding = second
    stale.text_key = None  # a full save of a stale instance writes its keys too: the trigger sets them again
    stale.save()
    a.refresh_from_db()
    assert a.text_key != b.text_key and TranscriptVector.objects.filter(key=a.text_key).exists()
    b.delete()  # ``first`` is no video's now

    assert services.distinct_vectors_sweep() == 1
    assert set(TranscriptVector.objects.values_list("key", flat=True)) == {a.text_key}
    assert set(PictureVector.objects.values_list("key", flat=True)) == {a.visual_key}
    # A full rebuild sweeps too: it recomputes a's picture from its keyframes (none), so a's old picture is no one's.
    assert services.repro_index_rebuild().vectors_swept == 1
    assert not PictureVector.objects.exists() and TranscriptVector.objects.count() == 1


def test_the_migration_keys_existing_videos_in_batches(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    migration = importlib.import_module("moderation.migrations.0032_distinct_embedding_vectors")
    rng = np.random.default_rng(23)
    shared = _unit(rng.normal(size=384))
    videos = [VideoFactory(text_embedding=shared, visual_embedding=_unit(rng.normal(size=512))) for _ in range(5)]
    expected = {v.pk: (v.text_key, v.visual_key) for v in Video.objects.filter(pk__in=[v.pk for v in videos])}
    with connection.cursor() as cur:  # the table as before the migration: no keys, no distinct vectors
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no ALTER TABLE over pending foreign-key checks
        cur.execute("ALTER TABLE moderation_video DISABLE TRIGGER moderation_video_vector_keys")
        cur.execute("UPDATE moderation_video SET text_key = NULL, visual_key = NULL")
        cur.execute("ALTER TABLE moderation_video ENABLE TRIGGER moderation_video_vector_keys")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
    TranscriptVector.objects.all().delete()
    PictureVector.objects.all().delete()
    monkeypatch.setattr(migration, "BATCH", 2)

    migration.key_existing_videos(None, SimpleNamespace(connection=connection))

    got = {v.pk: (v.text_key, v.visual_key) for v in Video.objects.filter(pk__in=expected)}
    assert got == expected and None not in {k for pair in got.values() for k in pair}
    assert TranscriptVector.objects.count() == 1 and PictureVector.objects.count() == 5
