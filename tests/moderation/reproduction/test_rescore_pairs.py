"""Stored pairs measured before the mirrored-frame fix are measured again by ``manage.py rescore_pairs``.

The scorer compares a mirrored copy's frames flipped back now, but a pair found before kept "Frame similarity
-0.822" until its video was searched again. The command measures the pairs of an older scorer again, batch by
batch, marking each; a second run changes nothing, and a run stopped midway resumes where it stopped.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from moderation.media.analyzers import OFFLINE_FRAME_EMBEDDING, frame_embedding_offline
from moderation.media.models import Keyframe, Video
from moderation.reproduction.features import FEATURE_NAMES, PAIR_SCORER_VERSION
from moderation.reproduction.models import PairReview, ReproCandidate
from tests.factories import UserFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _picture(seed: int) -> Any:
    ramp = np.tile(np.linspace(0, 255, 128, dtype=np.float32), (64, 1))
    ramp[10 + seed : 30 + seed, 20:40] = 255  # a bright block on the dark side: not symmetric in any way
    return np.stack([ramp] * 3, axis=-1).astype(np.uint8)


def _video(embedding: Any) -> Video:
    video = VideoFactory(frame_embedding_model=OFFLINE_FRAME_EMBEDDING)
    Keyframe.objects.create(video=video, index=0, timestamp=0.0, embedding=embedding)
    return video


def _old_pair(*, mirrored: bool, seed: int = 0) -> ReproCandidate:
    """A pair as the scorer before version 2 stored it: a mirrored copy's frame similarity negative."""
    picture = _picture(seed)
    plain = frame_embedding_offline(picture)
    flipped = frame_embedding_offline(np.ascontiguousarray(picture[:, ::-1]))
    original = _video(plain)
    copy = _video(flipped if mirrored else plain)
    old_sim = float(np.dot(plain, flipped)) if mirrored else 1.0
    features = {name: 0.0 for name in FEATURE_NAMES} | {
        "frame_sim_max": old_sim,
        "frame_sim_mean": old_sim,
        "mirrored": 1.0 if mirrored else 0.0,
    }
    return ReproCandidate.objects.create(
        video=copy,
        original=original,
        frame_similarity=old_sim,
        features=features,
        evidence={"alignment": {"mirrored": mirrored}, "frame_matches": [{"t": 0, "t_orig": 0, "sim": 0.5}]},
        score=0.1,
        retrieval_score=0.1,
    )


def _run(*args: str) -> str:
    out = StringIO()
    call_command("rescore_pairs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_mirrored_pairs_get_their_frame_similarity_measured_flipped_back_once() -> None:
    mirrored = _old_pair(mirrored=True)
    plain = _old_pair(mirrored=False, seed=5)
    assert mirrored.frame_similarity < -0.5  # what the pair screen showed
    PairReview.objects.create(candidate=mirrored, reviewer=UserFactory(), verdict="reproduction")

    out = _run("--mirrored-only", "--dry-run")
    assert "1 mirrored pair(s) measured by an older scorer would be measured again (scorer version " in out
    assert f"#{mirrored.pk}" in out and f"#{plain.pk}" not in out
    mirrored.refresh_from_db()
    assert mirrored.frame_similarity < -0.5 and mirrored.scored_with == 0

    out = _run("--mirrored-only")
    assert "1 mirrored pair(s) measured again" in out and "(1 changed)" in out and "left" not in out
    mirrored.refresh_from_db()
    assert mirrored.frame_similarity > 0.99 and mirrored.features["frame_sim_mean"] > 0.99
    assert mirrored.scored_with == PAIR_SCORER_VERSION
    assert mirrored.retrieval_score > 0.1 and mirrored.score == mirrored.retrieval_score  # no student: retrieval's
    assert mirrored.evidence["frame_matches"] == [{"t": 0, "t_orig": 0, "sim": 0.5}]  # kept
    assert mirrored.review.verdict == "reproduction"  # the verdict stays
    plain.refresh_from_db()
    assert plain.scored_with == 0  # not mirrored: left for a run without --mirrored-only

    before = list(ReproCandidate.objects.order_by("pk").values_list("pk", "updated_at", "features"))
    assert "0 mirrored pair(s) measured again" in _run("--mirrored-only")
    assert list(ReproCandidate.objects.order_by("pk").values_list("pk", "updated_at", "features")) == before

    assert "1 pair(s) measured again" in _run()
    plain.refresh_from_db()
    assert plain.scored_with == PAIR_SCORER_VERSION and plain.frame_similarity > 0.99


def test_a_run_stopped_midway_resumes_where_it_stopped() -> None:
    pairs = [_old_pair(mirrored=True, seed=i) for i in range(3)]
    out = _run("--mirrored-only", "--batch", "1", "--limit", "2")
    assert "2 mirrored pair(s) measured again" in out and "1 left: run again to continue" in out
    done = set(ReproCandidate.objects.filter(scored_with=PAIR_SCORER_VERSION).values_list("pk", flat=True))
    assert done == {pairs[0].pk, pairs[1].pk}
    touched = ReproCandidate.objects.get(pk=pairs[0].pk).updated_at

    out = _run("--mirrored-only", "--batch", "1")
    assert "1 mirrored pair(s) measured again" in out and "left" not in out
    assert all(p.frame_similarity > 0.99 for p in ReproCandidate.objects.all())
    assert ReproCandidate.objects.get(pk=pairs[0].pk).updated_at == touched  # not measured twice
