"""The PDQ index: the in-memory multi-index (exact against brute force) and its copy kept in step with PostgreSQL."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.db import connection

from moderation.media.models import Keyframe, Video
from moderation.reproduction import hamming, matching, pdq_index, selectors
from moderation.reproduction.models import FrameHash
from moderation.reproduction.services import candidates_retrieve, frame_hashes_index
from tests.factories import VideoFactory

RNG = random.Random(2020)


def _random_hash() -> str:
    return f"{RNG.getrandbits(256):064x}"


def _flip(hex_hash: str, bits: list[int]) -> str:
    value = int(hex_hash, 16)
    for b in bits:
        value ^= 1 << (255 - b)  # bit 0 = the most significant, as the chunks count them
    return f"{value:064x}"


def _brute(library: np.ndarray, queries: np.ndarray, threshold: int) -> set[tuple[int, int]]:
    lib, q = hamming.as_words(library), hamming.as_words(queries)
    distance = np.bitwise_count(q[:, None, :] ^ lib[None, :, :]).sum(axis=2)
    return {(int(a), int(b)) for a, b in zip(*np.nonzero(distance <= threshold), strict=True)}


@pytest.mark.parametrize("delta_max", [0, 300, 10**9])  # all in the chunk tables, merged in steps, all in the tail
def test_multi_index_finds_exactly_what_brute_force_finds(delta_max: int) -> None:
    gen = np.random.default_rng(delta_max % 97)
    library = gen.integers(0, 256, size=(2500, 32), dtype=np.uint8)
    sources = gen.choice(len(library), size=60, replace=False)
    queries = library[sources].copy()
    for row in queries:  # 0..40 bits off: inside and outside the threshold
        bits = np.unpackbits(row)
        bits[gen.choice(256, size=int(gen.integers(0, 41)), replace=False)] ^= 1
        row[:] = np.packbits(bits)
    index = hamming.MultiIndex(delta_max=delta_max)
    for start in range(0, len(library), 450):
        chunk = library[start : start + 450]
        ids = np.arange(start, start + len(chunk))
        index.add(chunk, ids + 1000, ids // 10)
    expected_merged = {0: index.size, 300: 2250, 10**9: 0}[delta_max]  # merges happen when the tail passes 300
    assert index.size == len(library) and index.merged == expected_merged
    for threshold in (31, 47):
        found = index.search(queries, threshold)
        assert {(int(q), int(i) - 1000) for q, i in zip(found.query, found.ids, strict=True)} == _brute(
            library, queries, threshold
        )
        assert list(found.distance) == sorted(found.distance)
    excluded = int(sources[0]) // 10
    assert excluded not in set(index.search(queries, 31, exclude_video_id=excluded).video_ids.tolist())


def test_the_pigeonhole_worst_case_at_31_bits_is_found_through_two_bit_probes() -> None:
    base = _random_hash()
    # Every one of the 12 chunks of 21 bits differs: 7 in 3 bits, 5 in 2 bits (31 in all).
    spread = [c * 21 + b for c in range(7) for b in (0, 5, 9)] + [c * 21 + b for c in range(7, 12) for b in (2, 20)]
    near = _flip(base, spread)
    assert matching.hamming_hex(base, near) == 31
    index = hamming.MultiIndex(delta_max=0)
    index.add(hamming.hex_codes([near, _random_hash()]), np.array([7, 8]), np.array([1, 2]))
    assert index.merged == 2
    found = index.search(hamming.hex_codes([base]), 31)
    assert found.ids.tolist() == [7] and found.distance.tolist() == [31]
    assert index.search(hamming.hex_codes([base]), 30).ids.tolist() == []


@pytest.mark.parametrize("chunks, threshold", [(12, 31), (12, 47), (12, 5), (16, 31), (11, 31)])
def test_the_chunk_radii_leave_no_hash_within_the_threshold_unprobed_and_probe_no_further(
    chunks: int, threshold: int
) -> None:
    radii = hamming.chunk_radii(threshold, chunks)
    # The nearest hash no probe reaches is one bit outside every chunk's radius: exactly one bit past the threshold.
    assert sum(r + 1 for r in radii) == threshold + 1
    assert radii == sorted(radii, reverse=True) and radii[0] - radii[-1] <= 1


@pytest.mark.parametrize(
    "bits_per_chunk",
    [
        [3] * 8 + [2, 2, 2, 1],  # only chunk 11 (probed within 1 bit) is inside its radius
        [3] * 7 + [2] + [2] * 4,  # only chunk 7 (the last one probed within 2 bits) is inside its radius
    ],
)
def test_the_worst_cases_of_the_narrower_radius_of_the_last_chunks_are_found(bits_per_chunk: list[int]) -> None:
    assert hamming.chunk_radii(31, 12) == [2] * 8 + [1] * 4
    base = _random_hash()
    near = _flip(base, [c * 21 + b for c, n in enumerate(bits_per_chunk) for b in (1, 8, 17)[:n]])
    assert matching.hamming_hex(base, near) == 31
    index = hamming.MultiIndex(delta_max=0)
    index.add(hamming.hex_codes([near, _random_hash()]), np.array([7, 8]), np.array([1, 2]))
    assert index.search(hamming.hex_codes([base]), 31).ids.tolist() == [7]


@pytest.mark.parametrize("chunk_bits_off", [0, 1, 2])
def test_the_prefilter_keeps_a_match_whose_every_other_differing_bit_is_among_its_96_bits(chunk_bits_off: int) -> None:
    # One chunk (21 bits, probed within 3 bits at threshold 3), so every match is found through it alone: a match
    # 3 bits off, the bits that are not in the chunk all among the 96 the chunk's rows carry (words 2-4: bits
    # 64-159), is as far off there as the threshold allows and must pass; 4 bits off must not be returned.
    assert hamming.slice_words(1, 21).tolist() == [[2, 3, 4]]
    assert hamming.chunk_radii(3, 1) == [3]
    base = _random_hash()
    in_chunk = [3, 11][:chunk_bits_off]
    in_slice = [64, 100, 127, 159][: 3 - chunk_bits_off]
    match, too_far = _flip(base, in_chunk + in_slice), _flip(base, in_chunk + [64, 100, 127, 159][: 4 - chunk_bits_off])
    index = hamming.MultiIndex(chunks=1, delta_max=0)  # the match at position 3: bits set beside its 96 in its rows
    index.add(hamming.hex_codes([_random_hash(), too_far, _random_hash(), match]), np.arange(6, 10), np.arange(4))
    assert index.merged == 4
    found = index.search(hamming.hex_codes([base]), 3)
    assert found.ids.tolist() == [9] and found.distance.tolist() == [3]
    assert index.search(hamming.hex_codes([base]), 4).ids.tolist() == [9, 7]


def _indexed(hashes: list[str], status: str = Video.Status.READY) -> Video:
    video = VideoFactory(status=status)
    Keyframe.objects.bulk_create(
        Keyframe(video=video, index=i, timestamp=float(i), image="", pdq_hash=h, pdq_quality=90)
        for i, h in enumerate(hashes)
    )
    frame_hashes_index(video_id=video.pk)
    return video


def _found(hex_hash: str) -> set[int]:
    return {h.video_id for h in selectors.hash_hits(queries=[(0.0, hex_hash, False)])}


@pytest.mark.django_db
def test_the_copy_catches_up_with_new_rows_without_reloading_and_a_restart_reloads_the_same() -> None:
    first = _random_hash()
    a = _indexed([first, _random_hash()])
    assert _found(_flip(first, [3, 100, 200])) == {a.pk}
    loaded = pdq_index.copy_stats()

    second = _random_hash()
    b = _indexed([second])  # a video becomes ready after the copy was loaded
    assert _found(_flip(second, list(range(0, 250, 10)))) == {b.pk}  # 25 bits off
    after = pdq_index.copy_stats()
    assert after["rows"] == loaded["rows"] + 1  # one row read, not a reload
    assert after["load_rows"] == loaded["load_rows"]

    stats = pdq_index.reload()  # what a restarted worker does on its first search
    assert stats.rows == FrameHash.objects.count() and pdq_index.copy_stats()["rows"] == stats.rows
    assert _found(second) == {b.pk} and _found(first) == {a.pk}


@pytest.mark.django_db
def test_rows_of_deleted_unready_and_reindexed_videos_are_not_returned() -> None:
    shared = _random_hash()
    ready, failing, deleted = _indexed([shared]), _indexed([shared]), _indexed([shared])
    changing = _indexed([shared])
    assert _found(shared) == {ready.pk, failing.pk, deleted.pk, changing.pk}  # all four in this process's copy

    Video.objects.filter(pk=failing.pk).update(status=Video.Status.FAILED)
    deleted.delete()
    fresh = _random_hash()
    Keyframe.objects.filter(video=changing).update(pdq_hash=fresh)
    frame_hashes_index(video_id=changing.pk)  # re-indexed: its old row is gone, a new one added

    assert _found(shared) == {ready.pk}
    assert _found(fresh) == {changing.pk}
    assert pdq_index.copy_stats()["rows"] >= 5  # the stale rows are still in memory: filtered, not trusted


@pytest.mark.django_db
def test_a_mirrored_copy_is_found_through_its_flipped_hashes() -> None:
    original_hashes = [_random_hash() for _ in range(3)]
    original = _indexed(original_hashes)
    copy = VideoFactory()
    # The copy's own frames look like nothing indexed; their horizontally flipped hashes are near the original's.
    FrameHash.objects.bulk_create(
        FrameHash(video=copy, t=float(t), quality=90, hash=matching.hex_to_bits(_random_hash()),
                  hash_mirror=matching.hex_to_bits(_flip(h, [t, 40 + t, 90, 130, 250])))
        for t, h in enumerate(original_hashes)
    )  # fmt: skip
    found = candidates_retrieve(video_id=copy.pk)
    assert list(found) == [original.pk]
    hits = found[original.pk]["hash_hits"]
    assert {(h.query_t, h.t, h.mirrored, h.distance) for h in hits} == {(float(t), float(t), True, 5) for t in range(3)}


@pytest.mark.django_db
def test_a_truncated_table_whose_new_ids_reach_past_the_copy_is_reloaded() -> None:
    old = _random_hash()
    _indexed([old])
    assert _found(old)
    last_id = pdq_index.copy_stats()["last_id"]
    with connection.cursor() as cur:  # a restore: new relation file, ids counted again from below ours
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("TRUNCATE moderation_framehash")
        cur.execute("SELECT setval(pg_get_serial_sequence('moderation_framehash', 'id'), %s, false)", [last_id])
    new = [_random_hash() for _ in range(3)]
    video = _indexed(new)
    assert min(FrameHash.objects.values_list("pk", flat=True)) == last_id  # the first new id is not above ours
    assert [_found(h) for h in new] == [{video.pk}] * 3
    assert not _found(old)


@pytest.mark.django_db
def test_a_videos_look_ups_are_its_usable_seconds_in_order_each_with_its_flipped_hash_where_it_has_one() -> None:
    video = VideoFactory()
    plain, flipped, flat = _random_hash(), _random_hash(), _random_hash()
    FrameHash.objects.bulk_create([
        FrameHash(video=video, t=2.0, quality=90, hash=matching.hex_to_bits(plain)),
        FrameHash(video=video, t=1.0, quality=matching.MIN_QUALITY, hash=matching.hex_to_bits(flipped),
                  hash_mirror=matching.hex_to_bits(plain)),
        FrameHash(video=video, t=0.0, quality=matching.MIN_QUALITY - 1, hash=matching.hex_to_bits(flat)),
    ])  # fmt: skip

    assert selectors.hash_queries_of(video.pk) == [(1.0, flipped, False), (1.0, plain, True), (2.0, plain, False)]


@pytest.mark.django_db
def test_a_videos_look_ups_come_with_the_tables_mark_and_a_mark_older_than_the_copy_never_reloads_it() -> None:
    first, second = _random_hash(), _random_hash()
    a = _indexed([first, second])
    queries, mark = selectors.hash_queries_marked(a.pk)
    assert queries == selectors.hash_queries_of(a.pk) == [(0.0, first, False), (1.0, second, False)]
    assert mark == pdq_index.table_mark() and mark.newest == max(FrameHash.objects.values_list("pk", flat=True))
    assert selectors.hash_queries_marked(VideoFactory().pk) == ([], mark)  # no hashes: no look-ups, still the mark

    assert {h.video_id for h in selectors.hash_hits(queries=queries[:1], mark=mark)} == {a.pk}
    state = pdq_index._copy_for_connection()
    copy, loads = state.index, pdq_index.copy_stats()["load_rows"]
    # A mark read before another thread's catch-up went past it looks like an emptied table: read again, no reload.
    b = _indexed([_flip(first, [1, 2, 3])])
    older = pdq_index.TableMark(newest=mark.newest - 1, filenode=mark.filenode)
    assert {h.video_id for h in selectors.hash_hits(queries=queries[:1], mark=older)} == {a.pk, b.pk}
    assert state.index is copy and pdq_index.copy_stats()["load_rows"] == loads


@pytest.mark.django_db
def test_the_copy_uses_the_configured_chunk_layout_and_a_bad_one_is_refused(settings) -> None:  # type: ignore[no-untyped-def]
    settings.REPRO_PDQ_CHUNKS = "16x16"  # small tables: 16 x 2^16 offsets
    pdq_index.discard()
    first = _random_hash()
    a = _indexed([first, _random_hash()])
    assert _found(_flip(first, list(range(0, 248, 8)))) == {a.pk}  # 31 bits off, the pigeonhole's edge
    state = pdq_index._copy_for_connection()
    assert (state.index.chunks, state.index.chunk_bits) == (16, 16)
    state.index.merge()  # into the chunk tables (a test's few rows otherwise stay in the brute-force tail)
    assert state.index.merged == state.index.size and _found(_flip(first, list(range(0, 248, 8)))) == {a.pk}

    settings.REPRO_PDQ_CHUNKS = "12x30"
    pdq_index.discard()
    with pytest.raises(ValueError, match="REPRO_PDQ_CHUNKS"):
        _found(first)
    settings.REPRO_PDQ_CHUNKS = "12x21"
    pdq_index.discard()


def _farm(hashes: list[str], n: int) -> list[int]:
    """``n`` ready videos holding exactly ``hashes`` (a farm of reposts), by id."""
    videos = VideoFactory.create_batch(n)
    FrameHash.objects.bulk_create(
        FrameHash(video=v, t=float(t), quality=90, hash=matching.hex_to_bits(h))
        for v in videos
        for t, h in enumerate(hashes)
    )
    return sorted(v.pk for v in videos)


@pytest.mark.django_db
def test_a_repost_of_a_farm_gets_its_earliest_videos_per_hash_and_the_next_ones_where_those_are_gone() -> None:
    hashes = [_random_hash() for _ in range(3)]
    farm = _farm(hashes, 12)
    repost = [(float(t), h, False) for t, h in enumerate(hashes)]

    def videos(per_hash: int) -> list[int]:
        hits = selectors.hash_hits(queries=repost, per_hash=per_hash)
        assert all(sum(h.video_id == v for h in hits) == 3 for v in {h.video_id for h in hits})  # every second
        return sorted({h.video_id for h in hits})

    assert videos(0) == farm  # every hit (36 rows)
    assert videos(4) == farm[:4]  # the earliest four per hash: 12 rows confirmed, not 36
    # The earliest five taken down or failed (their rows still in this process's copy): the next ones fill in.
    Video.objects.filter(pk__in=farm[:3]).delete()
    Video.objects.filter(pk__in=farm[3:5]).update(status=Video.Status.FAILED)
    assert videos(4) == farm[5:9]
    assert videos(20) == farm[5:]


@pytest.mark.django_db
def test_a_copy_of_a_source_that_a_farm_reposted_finds_the_source_first() -> None:
    hashes = [_random_hash() for _ in range(4)]
    source = _indexed(hashes)  # the source, then a farm of its reposts (its hashes exactly), then a near copy
    farm = _farm(hashes, 40)
    copy = VideoFactory()
    FrameHash.objects.bulk_create(
        FrameHash(video=copy, t=float(t), quality=90, hash=matching.hex_to_bits(_flip(h, [t, 50, 99, 200])))
        for t, h in enumerate(hashes)
    )  # fmt: skip
    found = candidates_retrieve(video_id=copy.pk, top_k=3)
    assert next(iter(found)) == source.pk and len(found) == 9  # 3 * top_k: the source and the earliest reposts
    assert set(found) == {source.pk, *farm[:8]}
    assert len(found[source.pk]["hash_hits"]) == 4


@pytest.mark.parametrize("layout", [(12, 21), (11, 23)])
def test_every_chunk_layout_finds_a_hash_31_bits_off_through_whichever_one_chunk_is_inside_its_radius(
    layout: tuple[int, int],
) -> None:
    """For each chunk in turn: a hash 31 bits off whose only chunk within its probe radius is that one (every other
    chunk one bit past its radius), and one 32 bits off (every chunk past its radius): the first found, not the
    second."""
    chunks, bits = layout
    radii = hamming.chunk_radii(31, chunks)
    base = _random_hash()
    near, far = [], []
    for inside in range(chunks):
        off = [r + 1 for r in radii]
        off[inside] -= 1
        flips = [c * bits + b for c, n in enumerate(off) for b in range(0, bits, bits // n + 1)[:n]]
        assert len(flips) == 31 and all(len([f for f in flips if f // bits == c]) == off[c] for c in range(chunks))
        near.append(_flip(base, flips))
    off = [r + 1 for r in radii]
    far.append(_flip(base, [c * bits + b for c, n in enumerate(off) for b in range(0, bits, bits // n + 1)[:n]]))
    assert [matching.hamming_hex(base, h) for h in near] == [31] * chunks and matching.hamming_hex(base, far[0]) == 32
    index = hamming.MultiIndex(chunks=chunks, chunk_bits=bits, delta_max=0)
    index.add(hamming.hex_codes(near + far), np.arange(chunks + 1), np.arange(chunks + 1))
    assert index.merged == chunks + 1  # in the chunk tables, not the brute-force tail
    found = index.search(hamming.hex_codes([base]), 31)
    assert sorted(found.ids.tolist()) == list(range(chunks)) and set(found.distance.tolist()) == {31}
