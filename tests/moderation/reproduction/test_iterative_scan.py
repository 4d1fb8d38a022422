"""``REPRO_HNSW_ITERATIVE_SCAN``: the distinct-vector scans with pgvector's iterative scan off still read every
vector they ask for; the per-keyframe scan, which filters the query video inside the walk, keeps it on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.db import connection

from moderation.reproduction import selectors, services
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hnsw_graphs_of_live_rows_only() -> None:
    """The graphs hold exactly this test's rows (earlier tests' rolled-back rows stay in them as dead elements until
    a vacuum: see test_neighbours_filtered); rolled back with the test's transaction."""
    with connection.cursor() as cur:
        for index in ("transcript_vector_hnsw", "picture_vector_hnsw"):
            cur.execute(f"REINDEX INDEX {index}")


def _unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in v / np.linalg.norm(v)]


def _statement_settings(**kwargs: Any) -> tuple[str, str]:
    """(hnsw.ef_search, hnsw.iterative_scan) as the statement ``video_neighbours_sql`` makes sets them."""
    with connection.cursor() as cur:
        cur.execute(selectors.video_neighbours_sql(**kwargs))
        ef, iterative = cur.fetchone()
        while cur.nextset():
            pass
    return str(ef), str(iterative)


def test_off_turns_the_iterative_scan_off_for_the_vector_scans_only(settings) -> None:  # type: ignore[no-untyped-def]
    me = VideoFactory()
    settings.REPRO_HNSW_ITERATIVE_SCAN = "off"
    for parts in ("all", "picture", "text"):
        assert _statement_settings(video_id=me.pk, parts=parts, channel="video") == ("40", "off")
    # The keyframe scan leaves the query video out inside the walk: it needs the second pass.
    assert _statement_settings(video_id=me.pk, parts="picture", channel="keyframes") == ("40", "relaxed_order")
    assert _statement_settings(video_id=me.pk, parts="all", channel="both") == ("40", "relaxed_order")
    assert _statement_settings(video_id=me.pk, parts="text", channel="both") == ("40", "off")

    settings.REPRO_HNSW_ITERATIVE_SCAN = "relaxed_order"
    assert _statement_settings(video_id=me.pk, parts="all", channel="video") == ("40", "relaxed_order")

    settings.REPRO_HNSW_ITERATIVE_SCAN = "of"
    with pytest.raises(ValueError, match="REPRO_HNSW_ITERATIVE_SCAN"):
        selectors.video_neighbours_sql(video_id=me.pk)


@pytest.mark.parametrize("iterative", ["off", "relaxed_order"])
def test_a_small_ef_search_still_reads_the_k_nearest_other_videos(settings, iterative: str) -> None:  # type: ignore[no-untyped-def]
    """One pass without the iterative scan returns at most ``ef_search`` vectors: with ef_search 4 and k 10 the
    statement must ask for k + 2 (the relaxed order gets there by resuming the walk)."""
    rng = np.random.default_rng(23)
    pictures, texts = rng.normal(size=(15, 512)), rng.normal(size=(15, 384))
    videos = [
        VideoFactory(visual_embedding=_unit(p), text_embedding=_unit(t)) for p, t in zip(pictures, texts, strict=True)
    ]
    settings.REPRO_HNSW_ITERATIVE_SCAN = iterative
    settings.REPRO_HNSW_EF_SEARCH = 4
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")  # the HNSW scans, as on a large table
    try:
        found = selectors.video_neighbours(video_id=videos[0].pk, k_text=10, k_videos=10, channel="video")
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET enable_seqscan")

    def nearest(vectors: np.ndarray) -> list[int]:  # exact: the ten most similar other videos
        units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        sims = units[1:] @ units[0]
        return [videos[1 + int(i)].pk for i in np.argsort(-sims)[:10]]

    assert [v for v, _s in found.text] == nearest(texts)
    assert [v for v, _s in found.videos] == nearest(pictures)
    assert all(s < services.VIDEO_SIM_MIN for _v, s in found.videos)  # unrelated: a real library's usual case
