"""The per-keyframe HNSW index is out of the schema and built on demand; the keyframe channel works either way."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from django.core.management import call_command

from moderation.media.models import Keyframe
from moderation.reproduction import selectors
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def _unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in v / np.linalg.norm(v)]


def test_the_keyframe_channel_finds_neighbours_without_the_index_warns_once_and_the_command_builds_and_drops_it(
    caplog, capsys
) -> None:  # fmt: skip
    rng = np.random.default_rng(5)
    base = rng.normal(size=512)
    query, copy = VideoFactory(), VideoFactory()
    Keyframe.objects.create(video=query, index=0, timestamp=0.0, image="q.jpg", embedding=_unit(base))
    Keyframe.objects.create(
        video=copy, index=0, timestamp=2.0, image="c.jpg", embedding=_unit(base + 0.1 * rng.normal(size=512))
    )
    assert not selectors.keyframe_index_exists()  # migration 0029 dropped it
    selectors._WARNED_NO_KEYFRAME_INDEX.clear()
    with caplog.at_level(logging.WARNING, logger="moderation.reproduction.selectors"):
        found = selectors.video_neighbours(video_id=query.pk, channel="keyframes").frames
        selectors.video_neighbours(video_id=query.pk, channel="both")
    assert [v for v, *_ in found] == [copy.pk]  # an exact scan of every keyframe row
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "repro_keyframe_index create" in caplog.records[0].getMessage()

    call_command("repro_keyframe_index", "create")
    assert selectors.keyframe_index_exists()
    call_command("repro_keyframe_index", "create")  # idempotent
    assert selectors.video_neighbours(video_id=query.pk, channel="keyframes").frames == found
    call_command("repro_keyframe_index", "drop")
    assert not selectors.keyframe_index_exists()
    out = capsys.readouterr().out
    assert "built in" in out and "(nothing to do)" in out and "dropped in" in out and "absent" in out
