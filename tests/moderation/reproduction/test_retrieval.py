"""Retrieval end to end: real clips through the real media pipeline, then candidate originals with evidence."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from moderation.media.analyzers import video_embedding
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.pipeline import video_process
from moderation.reproduction.features import PAIR_SCORER_VERSION
from moderation.reproduction.models import FrameHash, ReproCandidate
from moderation.reproduction.services import VIDEO_SIM_MIN, candidates_outdated, repro_candidates_refresh

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _ready(path: Path, title: str) -> Video:
    video = video_ingest(path=path, title=title)
    video_process(video_id=video.pk)
    video.refresh_from_db()
    assert video.status == Video.Status.READY, video.error
    return video


def test_copies_find_their_original_and_the_unrelated_video_does_not(
    repro_clips: dict[str, Path], policy_version
) -> None:  # type: ignore[no-untyped-def]
    original = _ready(repro_clips["original"], "tea")
    unrelated = _ready(repro_clips["unrelated"], "cat")
    mirror = _ready(repro_clips["mirror"], "tea mirrored")
    reencode = _ready(repro_clips["reencode"], "tea again")
    for video in (original, unrelated, mirror, reencode):
        repro_candidates_refresh(video_id=video.pk)

    assert FrameHash.objects.filter(video=original).count() == original.keyframes.count()
    top_of_mirror = ReproCandidate.objects.filter(video=mirror).order_by("-retrieval_score").first()
    assert top_of_mirror is not None and top_of_mirror.original_id == original.pk
    alignment = top_of_mirror.evidence["alignment"]
    assert alignment["mirrored"] is True and alignment["offset"] == 0.0
    # Its frames compared flipped back: the pair screen read "Frame similarity -0.822" for a mirrored re-upload.
    assert top_of_mirror.frame_similarity > 0.9 and top_of_mirror.features["frame_sim_mean"] > 0.9
    assert alignment["coverage_copy"] >= 0.75 and alignment["matches"]
    assert "pdq" in top_of_mirror.evidence["sources"]

    top_of_reencode = ReproCandidate.objects.filter(video=reencode).order_by("-retrieval_score").first()
    assert top_of_reencode is not None and top_of_reencode.original_id in {original.pk, mirror.pk}
    reencoded_pair = ReproCandidate.objects.get(video=reencode, original=original)
    assert reencoded_pair.hash_score > 0.5
    # The media pipeline wrote each video's embedding (the normalized mean of its keyframes'); the re-encoded copy
    # is found through it too, in the one HNSW scan of the video embeddings.
    for video in (original, reencode):
        video.refresh_from_db()
        frames = [kf.embedding for kf in video.keyframes.order_by("index")]
        assert np.allclose(np.asarray(video.visual_embedding, dtype=float), video_embedding(frames), atol=2e-3)
    assert "video" in reencoded_pair.evidence["sources"] and reencoded_pair.evidence["video_sim"] >= VIDEO_SIM_MIN

    # The unrelated video is never a copy of the tea video, and never matched by hash.
    pair = (
        ReproCandidate.objects.filter(video=unrelated, original=original).first()
        or ReproCandidate.objects.filter(video=original, original=unrelated).first()
    )
    assert pair is None or (pair.hash_score == 0.0 and pair.retrieval_score < top_of_mirror.retrieval_score / 2)

    # Pairs found now carry the scorer's version: rescore_pairs leaves them alone. One measured by the older scorer
    # (its frames unflipped) is measured again to what retrieval stores now.
    assert not candidates_outdated().exists()
    measured = top_of_mirror.features
    old = measured | {"frame_sim_max": -0.822, "frame_sim_mean": -0.8}
    ReproCandidate.objects.filter(pk=top_of_mirror.pk).update(scored_with=0, frame_similarity=-0.822, features=old)
    call_command("rescore_pairs", "--mirrored-only", stdout=StringIO())
    top_of_mirror.refresh_from_db()
    assert top_of_mirror.features == measured and top_of_mirror.frame_similarity > 0.9
    assert top_of_mirror.scored_with == PAIR_SCORER_VERSION

    # Idempotent: running retrieval again changes no pair and adds none.
    before = sorted(ReproCandidate.objects.values_list("video_id", "original_id", "retrieval_score"))
    repro_candidates_refresh(video_id=mirror.pk)
    assert sorted(ReproCandidate.objects.values_list("video_id", "original_id", "retrieval_score")) == before
