"""The picture and transcript HNSW scans at once: the transcript one on a second connection, outside transactions only,
with the same neighbours as the one statement, and a broken second connection costs nothing but the overlap."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from moderation.reproduction import selectors, side_connection
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
def test_outside_a_transaction_the_transcript_scan_runs_beside_and_a_broken_side_connection_is_replaced(
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
        side = side_connection.backend_pid()
        assert side is not None
        statements = " ".join(q["sql"] for q in ran_here.captured_queries)
        assert "visual_embedding <=>" in statements and "text_embedding <=>" not in statements

        # The side backend goes away (a restart, an idle timeout): this search still gets every neighbour, the
        # next one opens a new side connection.
        with connection.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [side])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [side])
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.05)
        assert selectors.video_neighbours(video_id=query) == serial
        assert selectors.video_neighbours(video_id=query) == serial
        assert side_connection.backend_pid() not in {None, side}
    finally:
        side_connection.close()


@pytest.mark.django_db
def test_inside_a_transaction_nothing_goes_to_the_side_connection(settings) -> None:
    """The side connection would not see this transaction's rows (the query video's own transcript vector)."""
    settings.REPRO_NEIGHBOURS_PARALLEL = True
    query, copy = _library()
    assert side_connection.send("SELECT 1") is None
    found = selectors.video_neighbours(video_id=query)
    assert copy in {v for v, _ in found.text} and copy in {v for v, _ in found.videos}
    assert side_connection.backend_pid() is None
