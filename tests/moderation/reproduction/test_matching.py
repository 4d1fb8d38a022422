"""PDQ look-ups and vPDQ-style alignment: the exact Hamming search through the index and the offset vote."""

from __future__ import annotations

import random

import pytest

from moderation.reproduction import matching
from moderation.reproduction.models import FrameHash
from moderation.reproduction.selectors import hash_hits
from tests.factories import VideoFactory

rng = random.Random(7)


def random_hash() -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(hex_hash: str, n: int, seed: int = 0) -> str:
    bits = random.Random(seed).sample(range(256), n)
    value = int(hex_hash, 16)
    for b in bits:
        value ^= 1 << b
    return f"{value:064x}"


@pytest.mark.django_db
def test_hamming_search_finds_near_duplicates_and_not_far_ones() -> None:
    query_video, near_video, far_video, edge_video = VideoFactory(), VideoFactory(), VideoFactory(), VideoFactory()
    base = random_hash()
    rows = [
        (near_video, flip(base, 20, seed=1)),
        (edge_video, flip(base, 31, seed=2)),
        (far_video, flip(base, 40, seed=3)),
    ] + [(far_video, random_hash()) for _ in range(200)]
    FrameHash.objects.bulk_create(
        FrameHash(video=v, t=float(i), quality=100, hash=matching.hex_to_bits(h)) for i, (v, h) in enumerate(rows)
    )
    hits = hash_hits(queries=[(3.0, base, False)], exclude_video_id=query_video.pk)
    found = {(h.video_id, h.distance) for h in hits}
    assert found == {(near_video.pk, 20), (edge_video.pk, 31)}
    assert all(h.query_t == 3.0 and not h.mirrored for h in hits)
    # Looser threshold: the 40-bit neighbour is found too (three bits flipped per chunk in the query).
    assert far_video.pk in {h.video_id for h in hash_hits(queries=[(0.0, base, False)], threshold=47)}


def test_alignment_finds_the_offset_on_synthetic_per_second_hashes() -> None:
    original = [(float(t), random_hash()) for t in range(20)]
    # The copy is seconds 5..14 of the original, re-encoded (a few bits off), plus 3 seconds of its own intro.
    copy = [(float(t), random_hash()) for t in range(3)] + [
        (float(t + 3), flip(h, 8, seed=t)) for t, (_o, h) in enumerate(original[5:15])
    ]
    result = matching.align(copy, original)
    assert result.offset == 2.0  # copy second 3 is original second 5
    assert result.matched_seconds == 10 and not result.mirrored and result.scale == 1.0
    assert result.coverage_copy == pytest.approx(10 / 13)
    assert result.coverage_original == pytest.approx(10 / 20)
    assert all(m["t_orig"] - m["t"] == 2.0 for m in result.matches)


def test_alignment_uses_mirrored_hashes_and_finds_nothing_between_unrelated_videos() -> None:
    original = [(float(t), random_hash()) for t in range(8)]
    mirrored = [(float(t), flip(h, 5, seed=t)) for t, h in original]
    unrelated_plain = [(float(t), random_hash()) for t in range(8)]
    result = matching.align(unrelated_plain, original, copy_mirrored=mirrored)
    assert result.mirrored and result.offset == 0.0 and result.coverage_copy == 1.0
    nothing = matching.align([(float(t), random_hash()) for t in range(8)], original)
    assert nothing.matched_seconds == 0 and nothing.coverage_copy == 0.0
