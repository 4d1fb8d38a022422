"""The picture and transcript HNSW scans at once, each on a side connection, outside transactions only, sent before
retrieval's PDQ look-up: the same neighbours as the one statement, and a broken side connection costs nothing but
the overlap."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from moderation.reproduction import matching, pdq_index, selectors, services, side_connection
from moderation.reproduction.models import FrameHash
from tests.factories import VideoFactory


def _unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in v / np.linalg.norm(v)]


def _library() -> tuple[int, int]:
    """A query video, a near copy of it (picture and transcript) and two unrelated videos: (query id, copy id)."""
    rng = np.random.default_rng(7)
    picture, words = rng.normal(size=512), rng.normal(size=384)
    query = VideoFactory(visual_embedding=_unit(picture), text_embedding=_unit(words))
    copy = VideoFactory(
        visual_embedding=_unit(picture + 0.2 * rng.normal(size=512)),
        text_embedding=_unit(words + 0.2 * rng.normal(size=384)),
    )
    for _ in range(2):
        VideoFactory(visual_embedding=_unit(rng.normal(size=512)), text_embedding=_unit(rng.normal(size=384)))
    return query.pk, copy.pk


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_both_scans_run_beside_and_a_broken_side_connection_is_replaced(
    settings,
) -> None:  # fmt: skip
    query, copy = _library()
    try:
        settings.REPRO_NEIGHBOURS_PARALLEL = False
        serial = selectors.video_neighbours(video_id=query)
        assert [v for v, _ in serial.text][:1] == [copy] and [v for v, _ in serial.videos][:1] == [copy]

        settings.REPRO_NEIGHBOURS_PARALLEL = True
        with CaptureQueriesContext(connection) as ran_here:
            parallel = selectors.video_neighbours(video_id=query)
        assert parallel == serial
        sides = side_connection.backend_pids()
        assert len(sides) == 2
        assert not ran_here.captured_queries  # both scans ran on the side connections

        # The side backend goes away (a restart, an idle timeout): this search still gets every neighbour, the
        # next one opens a new side connection.
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [sides])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [sides])
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.05)
        assert selectors.video_neighbours(video_id=query) == serial
        assert selectors.video_neighbours(video_id=query) == serial
        assert len(side_connection.backend_pids()) == 2 and not set(side_connection.backend_pids()) & set(sides)
    finally:
        side_connection.close()


@pytest.mark.django_db
def test_inside_a_transaction_nothing_goes_to_the_side_connection(settings) -> None:
    """The side connection would not see this transaction's rows (the query video's own transcript vector)."""
    settings.REPRO_NEIGHBOURS_PARALLEL = True
    # Earlier tests' rolled-back videos stay in the HNSW indexes as dead entries until a vacuum (a test database
    # gets none mid-run); a scan through thousands of them can miss this test's few live rows. Rebuilt here, inside
    # this test's transaction (undone with it), the indexes hold only live rows.
    with connection.cursor() as cur:
        cur.execute("REINDEX INDEX transcript_vector_hnsw; REINDEX INDEX picture_vector_hnsw")
    query, copy = _library()
    assert side_connection.send("SELECT 1") is None
    found = selectors.video_neighbours(video_id=query)
    assert copy in {v for v, _ in found.text} and copy in {v for v, _ in found.videos}
    assert side_connection.backend_pids() == []


@pytest.mark.django_db(transaction=True)
def test_retrieval_sends_both_scans_before_its_pdq_look_up_and_finds_the_same(settings, monkeypatch) -> None:
    """The two backends walk their graphs while this process searches its PDQ copy and confirms the hits."""
    query, copy = _library()
    shared = [f"{random.Random(t).getrandbits(256):064x}" for t in range(3)]
    for video_id in (query, copy):
        FrameHash.objects.bulk_create(
            FrameHash(video_id=video_id, t=float(t), quality=90, hash=matching.hex_to_bits(h)) for t, h in enumerate(shared)
        )  # fmt: skip
    try:
        settings.REPRO_NEIGHBOURS_PARALLEL = False
        serial = services.candidates_retrieve(video_id=query)
        assert list(serial) == [copy] and len(serial[copy]["hash_hits"]) == 3 and serial[copy]["text_sim"] > 0

        settings.REPRO_NEIGHBOURS_PARALLEL = True
        order: list[str] = []
        send, search = side_connection.send, pdq_index.search
        monkeypatch.setattr(side_connection, "send", lambda sql, **kw: order.append("scan") or send(sql, **kw))
        monkeypatch.setattr(pdq_index, "search", lambda *a, **kw: order.append("pdq") or search(*a, **kw))
        with CaptureQueriesContext(connection) as ran_here:
            assert services.candidates_retrieve(video_id=query) == serial
        assert order == ["scan", "scan", "pdq"]
        assert not any("<=>" in q["sql"] for q in ran_here.captured_queries)  # the scans ran beside
    finally:
        side_connection.close()


def _side_state(slot: str) -> tuple[dict[str, int], str]:
    """What the side connection ``slot`` holds: its prepared statements (name → runs) and its hnsw.ef_search."""
    conn = side_connection._side(slot).conn
    runs = dict(conn.execute("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements").fetchall())
    return runs, conn.execute("SELECT current_setting('hnsw.ef_search')").fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_side_scans_are_prepared_once_per_side_connection_and_follow_the_settings(settings) -> None:
    """Each retrieval's two scans run a statement prepared on their side connection (parsed and planned once, not
    per retrieval: less CPU on the walking backends; bench/RESULTS.md, hrepro22), with the same neighbours as the
    one statement; a changed ef_search reaches the connection; without prepared statements (a pooler), plain SQL."""
    query, copy = _library()
    try:
        settings.REPRO_NEIGHBOURS_PARALLEL = False
        serial = selectors.video_neighbours(video_id=query)
        settings.REPRO_NEIGHBOURS_PARALLEL = True
        for video_id in (query, copy, query):  # the video is the statement's parameter: one statement per scan
            found = selectors.video_neighbours(video_id=video_id)
        assert found == serial
        for slot in ("text", "picture"):
            runs, ef = _side_state(slot)
            assert list(runs.values()) == [3] and ef == str(settings.REPRO_HNSW_EF_SEARCH)

        settings.REPRO_HNSW_EF_SEARCH = 60  # the session follows the setting (a statement of its own)
        assert selectors.video_neighbours(video_id=query) == serial
        assert _side_state("text")[1] == "60"

        side_connection.close()  # a new side connection, with prepared statements off (DATABASE_PREPARED_STATEMENTS)
        connection.connection.prepare_threshold = None
        try:
            assert selectors.video_neighbours(video_id=query) == serial
            assert _side_state("text")[0] == {}
        finally:
            connection.close()  # the next connection takes its threshold from the settings again
    finally:
        side_connection.close()
