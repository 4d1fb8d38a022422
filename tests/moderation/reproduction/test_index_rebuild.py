"""The PDQ index: rebuilt by `manage.py rebuild_repro_index`, kept current per ready video, shared through PostgreSQL."""

from __future__ import annotations

import random
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections

from moderation.media.models import Keyframe, Video
from moderation.reproduction import matching, pdq_index, selectors
from moderation.reproduction.features import _bits_hex
from moderation.reproduction.models import FrameHash, ReproCandidate
from moderation.reproduction.services import frame_hashes_index
from moderation.reproduction.tasks import find_candidates
from tests.factories import VideoFactory

RNG = random.Random(20)


def _random_hash() -> str:
    return f"{RNG.getrandbits(256):064x}"


def _near(hex_hash: str, bits: int = 5) -> str:
    value = int(hex_hash, 16)
    for b in RNG.sample(range(256), bits):
        value ^= 1 << b
    return f"{value:064x}"


def _video(hashes: list[str], status: str = Video.Status.READY) -> Video:
    video = VideoFactory(status=status)
    Keyframe.objects.bulk_create(
        Keyframe(video=video, index=i, timestamp=float(i), image="", pdq_hash=h, pdq_quality=90)
        for i, h in enumerate(hashes)
    )
    return video


def _rows(video: Video) -> list[tuple[float, str]]:
    return [(t, _bits_hex(h)) for t, h in FrameHash.objects.filter(video=video).order_by("t").values_list("t", "hash")]


def _snapshot() -> list[tuple]:  # type: ignore[type-arg]
    fields = ["video_id", "t", "quality", "hash"]
    return sorted((*row[:3], _bits_hex(row[3]), *row[4:]) for row in FrameHash.objects.values_list(*fields))


@pytest.mark.django_db
def test_rebuild_indexes_ready_videos_replaces_stale_rows_and_a_second_run_changes_nothing() -> None:
    fresh = _video([_random_hash() for _ in range(3)])
    changed = _video([_random_hash() for _ in range(2)])
    failed = _video([_random_hash() for _ in range(2)], status=Video.Status.FAILED)
    stale = _random_hash()
    for video in (changed, failed):  # rows left from an earlier run, no longer what the keyframes say
        FrameHash.objects.create(video=video, t=0.0, quality=90, hash=matching.hex_to_bits(stale))

    out = StringIO()
    call_command("rebuild_repro_index", "--every", "1", stdout=out)

    for video in (fresh, changed):
        expected = [(k.timestamp, k.pdq_hash) for k in Keyframe.objects.filter(video=video).order_by("index")]
        assert _rows(video) == expected
    assert not FrameHash.objects.filter(video=failed).exists()
    text = out.getvalue()
    assert "1/2 videos" in text and "2/2 videos, 5 seconds indexed" in text
    assert "removed 1 rows of videos no longer ready" in text

    # The rebuilt index answers look-ups: a near copy of one of fresh's seconds finds fresh.
    query = _near(Keyframe.objects.get(video=fresh, index=1).pdq_hash)
    hits = selectors.hash_hits(queries=[(0.0, query, False)], exclude_video_id=0)
    assert [(h.video_id, h.t) for h in hits] == [(fresh.pk, 1.0)]

    before = _snapshot()
    call_command("rebuild_repro_index", stdout=StringIO())
    assert _snapshot() == before and len(before) == 5


@pytest.mark.django_db
def test_missing_only_indexes_unindexed_videos_and_leaves_the_others_alone() -> None:
    indexed = _video([_random_hash()])
    frame_hashes_index(video_id=indexed.pk)
    kept = _snapshot()
    waiting = _video([_random_hash(), _random_hash()])

    out = StringIO()
    call_command("rebuild_repro_index", "--missing", stdout=out)

    assert len(_rows(waiting)) == 2
    assert [r for r in _snapshot() if r[0] == indexed.pk] == kept
    assert "1/1 videos, 2 seconds indexed" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_each_ready_video_is_indexed_on_its_own_concurrent_writers_leave_one_copy_and_the_index_outlives_the_worker() -> (
    None
):
    """``find_candidates`` (what ``video_ready`` queues) adds one video without touching the others; the
    index is PostgreSQL rows (each process's copy reloads from them), so a worker that restarts (fresh
    connections, no memory) still finds it; a redelivered task racing a rebuild of the same video leaves
    its rows once; writers of different videos racing a reader leave no row the reader's copy skipped.
    (One test: each transactional test costs a flush of every table.)"""
    original_hashes = [_random_hash() for _ in range(4)]
    original = _video(original_hashes)
    unrelated = _video([_random_hash() for _ in range(4)])
    copy = _video([_near(h) for h in original_hashes])

    find_candidates(original.pk)
    find_candidates(unrelated.pk)
    assert set(FrameHash.objects.values_list("video_id", flat=True)) == {original.pk, unrelated.pk}
    untouched = [r for r in _snapshot() if r[0] == original.pk]

    connections.close_all()  # what a worker restart loses: connections and anything held in memory
    pdq_index.discard()
    find_candidates(copy.pk)

    assert [r for r in _snapshot() if r[0] == original.pk] == untouched
    pair = ReproCandidate.objects.get(video=copy, original=original)
    assert "pdq" in pair.evidence["sources"] and pair.evidence["alignment"]["coverage_copy"] == 1.0
    assert not ReproCandidate.objects.filter(video=copy, original=unrelated).exists()

    video = _video([_random_hash() for _ in range(6)])
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            start.wait(timeout=30)
            for _ in range(3):
                frame_hashes_index(video_id=video.pk)
        except BaseException as exc:  # noqa: BLE001  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert FrameHash.objects.filter(video=video).count() == 6

    # Writers of different videos commit in any order while a reader keeps its copy in step by id:
    # afterwards every video's current rows are found, none skipped by the copy's high-water mark.
    videos = [_video([_random_hash() for _ in range(5)]) for _ in range(4)]
    start = threading.Barrier(5)
    done = threading.Event()

    def writer(v: Video) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(4):
                frame_hashes_index(video_id=v.pk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def reader() -> None:
        try:
            start.wait(timeout=30)
            while not done.is_set():
                selectors.hash_hits(queries=[(0.0, _random_hash(), False)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    writers = [threading.Thread(target=writer, args=(v,)) for v in videos]
    watcher = threading.Thread(target=reader)
    for t in [*writers, watcher]:
        t.start()
    for t in writers:
        t.join(timeout=60)
    done.set()
    watcher.join(timeout=60)
    assert not errors
    for v in videos:
        rows = _rows(v)
        assert len(rows) == 5
        hits = selectors.hash_hits(queries=[(t, h, False) for t, h in rows], exclude_video_id=0)
        assert {(h.video_id, h.t, h.distance) for h in hits} == {(v.pk, t, 0) for t, _h in rows}


@pytest.mark.django_db
def test_the_rebuild_writes_video_embeddings_and_missing_catches_videos_indexed_before_they_existed() -> None:
    unit = [1.0] + [0.0] * 511
    other = [0.0, 1.0] + [0.0] * 510
    before = _video([_random_hash(), _random_hash()])  # indexed before video embeddings existed: rows, no vector
    frame_hashes_index(video_id=before.pk)
    Keyframe.objects.filter(video=before, index=0).update(embedding=unit)
    Keyframe.objects.filter(video=before, index=1).update(embedding=other)
    Video.objects.filter(pk=before.pk).update(visual_embedding=None)
    no_frames = _video([_random_hash()])  # keyframes without embeddings: nothing to average, never re-done
    frame_hashes_index(video_id=no_frames.pk)

    out = StringIO()
    call_command("rebuild_repro_index", "--missing", stdout=out)

    before.refresh_from_db()
    assert [round(float(x), 3) for x in before.visual_embedding[:3]] == [0.707, 0.707, 0.0]
    assert "1/1 videos" in out.getvalue()
    no_frames.refresh_from_db()
    assert no_frames.visual_embedding is None


@pytest.mark.django_db
def test_indexing_for_retrieval_leaves_the_pipelines_video_embedding_and_a_full_rebuild_recomputes_it() -> None:
    video = _video([_random_hash(), _random_hash()])
    Keyframe.objects.filter(video=video).update(embedding=[1.0] + [0.0] * 511)
    written_by_pipeline = [0.0, 1.0] + [0.0] * 510  # stands apart from the keyframes' mean, so a rewrite would show
    Video.objects.filter(pk=video.pk).update(visual_embedding=written_by_pipeline)

    frame_hashes_index(video_id=video.pk)  # what find_candidates runs for every ready video
    video.refresh_from_db()
    assert [round(float(x), 3) for x in video.visual_embedding[:2]] == [0.0, 1.0]  # not recomputed: no second write

    call_command("rebuild_repro_index", stdout=StringIO())
    video.refresh_from_db()
    assert [round(float(x), 3) for x in video.visual_embedding[:2]] == [1.0, 0.0]  # the rebuild recomputes it
