"""An exact in-memory Hamming range index for 256-bit PDQ hashes: multi-index hashing over long chunks.

No Django, no database (``pdq_index`` keeps one of these in step with PostgreSQL). numpy only.

The 256 bits are cut into ``CHUNKS`` = 12 chunks of ``CHUNK_BITS`` = 21 bits (252 bits; the last 4 are
only compared, never looked up). Two hashes within ``threshold`` bits must, by the pigeonhole principle,
be close in some chunk (``chunk_radii``): for PDQ's threshold 31 = 12 x 2 + 7, within 2 bits in one of
the first 8 chunks or within 1 bit in one of the last 4 (8 chunks of 3 or more differing bits and 4 of 2
or more would make 32). So a query probes its own value and every value within 2 bits of it in the first
8 chunks (1 + 21 + 210 = 232 probes each) and within 1 bit in the last 4 (22 each): 1,944 probes per hash
(2,784 when every chunk was probed within 2 bits), and verifies what it finds with the exact distance
over all 256 bits: nothing within the threshold is ever missed.

Why 21 bits and not the 16 of the earlier PostgreSQL index: a probe returns about N / 2^b stored hashes,
so with 16-bit chunks every probe of a 1.6M-hash library (200k videos) returned ~24 rows and the work grew
with the library; with 21-bit chunks a probe returns ~0.8 rows at 1.6M hashes and the fixed cost of the
probes (direct array look-ups, no search) dominates up to a few million hashes.

Layout (per chunk, compressed sparse rows, all chunks in one flat array each): ``offsets[c, v]`` ..
``offsets[c, v + 1]`` is the range of rows (chunk ``c``'s are rows ``c * merged`` onwards; the offsets hold
those absolute row numbers) of the stored hashes whose chunk ``c`` equals ``v`` — one direct array read per
probe, and the probes of every chunk and query hash are gathered at once (a dozen numpy calls per search,
whatever the number of chunks).

A row is 16 bytes: the stored hash's position and a **prefilter**, 96 more of its bits (the three 32-bit
words after the ones chunk ``c`` touches, so none of the chunk's own). A candidate whose 96 bits alone are
more than ``threshold`` off cannot be within it over all 256 (a distance over some of the bits is at most
the distance over all of them), so it is dropped before its full hash is read; for unrelated hashes, ~128
bits apart, that is all but ~0.04 % of them (a 96-bit slice of random bits is 31 or fewer bits off with
that probability). At 1.6M hashes a query video's ~24k candidates then cost one read of a row each, not
that and a second random read of the 32-byte hash from the 51 MB of hashes; the few that pass (~71 of ~23.8k
in bench/pdq_layouts.py, nearly all of them true matches found through several chunks) are verified over all
256 bits. The price is memory: 16 bytes a row instead of 4, 240 B a hash instead of 96 (bench/RESULTS.md).
Hashes are appended: the newest ``delta_max`` at most sit in a small tail that
is compared by brute force; when the tail is full it is merged into the chunk tables (inserting at each
bucket's end, linear in the table, no re-sort). Nothing is ever removed: rows that PostgreSQL no longer
holds are filtered by the caller, and a rebuild from scratch compacts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

HASH_BYTES = 32
CHUNKS = 12
CHUNK_BITS = 21
DELTA_MAX = 4096
SLICE_WORDS = 3  # 32-bit words of each hash beside its position in a chunk table row: the prefilter (96 bits)
_LOW32 = np.uint64(0xFFFFFFFF)
_HIGH32 = np.uint64(0xFFFFFFFF00000000)


def _flip_masks(bits: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for combo in itertools.combinations(range(bits), r):
            masks.append(sum(1 << b for b in combo))
    return np.array(masks, dtype=np.uint32)


def chunk_radii(threshold: int, chunks: int) -> list[int]:
    """How far from the query's value each chunk is probed (-1: not at all) so that nothing within
    ``threshold`` is missed: with ``threshold = chunks * a + b`` (0 <= b < chunks), the first ``b + 1``
    chunks within ``a`` bits and the others within ``a - 1``. A hash within the threshold has one chunk
    inside its radius: were the first ``b + 1`` chunks each ``a + 1`` or more bits off and the others
    ``a`` or more, the distance would be at least ``(b + 1)(a + 1) + (chunks - b - 1) a = threshold + 1``."""
    a, b = divmod(max(0, threshold), chunks)
    return [a if c <= b else a - 1 for c in range(chunks)]


def chunk_keys(words: np.ndarray, chunk: int, bits: int = CHUNK_BITS) -> np.ndarray:
    """Chunk ``chunk`` (``bits`` wide, most significant bits first) of each hash in ``words`` ((n, 4) big-endian uint64)."""
    start = chunk * bits
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << bits) - 1)
    if offset + bits <= 64:
        value = (words[:, word] >> np.uint64(64 - offset - bits)) & mask
    else:
        low = offset + bits - 64  # bits taken from the next word
        value = ((words[:, word] << np.uint64(low)) | (words[:, word + 1] >> np.uint64(64 - low))) & mask
    return value.astype(np.uint32)


def as_words(codes: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 hashes → (n, 4) native uint64 words in big-endian bit order (for shifts and popcounts)."""
    return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)


def slice_words(chunks: int, bits: int = CHUNK_BITS) -> np.ndarray:
    """Which 32-bit words of a hash (0 = the most significant) each chunk's table rows carry as the prefilter
    ((chunks, SLICE_WORDS)): the ``SLICE_WORDS`` after the (at most two) words the chunk touches, wrapping round."""
    first = np.arange(chunks) * bits // 32
    return (first[:, None] + 2 + np.arange(SLICE_WORDS)[None, :]) % 8


def _slices(codes: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Each hash's prefilter per chunk (``words``: ``slice_words``), laid out as the table rows with position 0:
    ((n * chunks), 2) uint64, word 0 = first slice word << 32, word 1 = second | third << 32 (little-endian:
    a (.., 4) uint32 view is position, then the three words)."""
    u32 = np.ascontiguousarray(codes).view(">u4").astype(np.uint32)  # (n, 8), most significant first
    out = np.zeros((len(codes), len(words), 4), dtype=np.uint32)
    out[:, :, 1:] = u32[:, words]
    return out.view(np.uint64).reshape(-1, 2)


def _table_rows(u32: np.ndarray, words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """One chunk's table rows ((n, 2) uint64, as ``_slices`` lays them out) for hashes given as (n, 8) uint32
    words, most significant first, at ``positions``."""
    rows = np.empty((len(u32), 2), dtype=np.uint64)
    rows[:, 0] = positions | (u32[:, words[0]].astype(np.uint64) << np.uint64(32))
    rows[:, 1] = u32[:, words[1]] | (u32[:, words[2]].astype(np.uint64) << np.uint64(32))
    return rows


def hex_codes(hex_hashes: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hex_hashes), dtype=np.uint8).reshape(-1, HASH_BYTES)


@dataclass(frozen=True)
class Matches:
    """Stored hashes within the threshold of a query: parallel arrays, ordered by distance."""

    query: np.ndarray  # index of the query hash
    ids: np.ndarray  # the stored hash's id (the caller's, e.g. a PostgreSQL row id)
    video_ids: np.ndarray
    distance: np.ndarray
    positions: np.ndarray  # the stored hash's position in the index (``MultiIndex.video_ranks``)


class MultiIndex:
    """Append-only exact Hamming range search (see the module docstring)."""

    def __init__(self, *, chunks: int = CHUNKS, chunk_bits: int = CHUNK_BITS, delta_max: int = DELTA_MAX) -> None:
        if chunks * chunk_bits > HASH_BYTES * 8 or chunk_bits > 31:
            raise ValueError("chunks x chunk_bits must fit in 256 bits, chunks at most 31 bits wide")
        self.chunks, self.chunk_bits, self.delta_max = chunks, chunk_bits, delta_max
        self.size = 0  # hashes stored
        self.merged = 0  # of which in the chunk tables (the rest is the brute-force tail)
        self._words = np.empty((0, 4), dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int64)
        self._video_ids = np.empty(0, dtype=np.int64)
        # Chunk c's bucket offsets are _offsets[c * (2^bits + 1) ...] and its rows _rows[c * merged ...]: one flat
        # array each, so a search gathers the probes of every chunk at once (a handful of numpy calls, not 12x).
        self._offsets: np.ndarray | None = None  # allocated on the first merge (chunks x (2^bits + 1))
        self._rows = np.empty((0, 2), dtype=np.uint64)  # position | prefilter (see ``_slices``)
        self._masks: dict[int, np.ndarray] = {}
        self._slice_words = slice_words(chunks, chunk_bits)
        # Per (query hashes, threshold): each probe's query x chunks + chunk (the same for every such search).
        self._query_chunks: dict[tuple[int, int], np.ndarray] = {}

    # --- writes -------------------------------------------------------------------------------------------

    def add(self, codes: np.ndarray, ids: np.ndarray, video_ids: np.ndarray) -> None:
        """Append hashes ((n, 32) uint8) with their ids and video ids."""
        n = len(codes)
        if n == 0:
            return
        need = self.size + n
        if need > len(self._ids):
            capacity = max(need, 2 * len(self._ids), 1024)
            self._words = _grow(self._words, capacity)
            self._ids = _grow(self._ids, capacity)
            self._video_ids = _grow(self._video_ids, capacity)
        self._words[self.size : need] = as_words(codes)
        self._ids[self.size : need] = ids
        self._video_ids[self.size : need] = video_ids
        self.size = need
        if self.size - self.merged > self.delta_max:
            self.merge()

    def merge(self) -> None:
        """Move the brute-force tail into the chunk tables."""
        start, end = self.merged, self.size
        if end == start:
            return
        if self.chunks * end >= 2**32:  # ~358M hashes at 12 chunks (45M videos): one copy per node before that
            raise ValueError("the bucket offsets are 32-bit row numbers: at most 2^32 - 1 rows over all chunks")
        width = (1 << self.chunk_bits) + 1
        if self._offsets is None:
            self._offsets = np.zeros(self.chunks * width, dtype=np.uint32)
        words = self._words[start:end]
        positions = np.arange(start, end, dtype=np.uint64)
        u32 = np.empty((end - start, 8), dtype=np.uint32)  # the hashes as 32-bit words, most significant first
        u32[:, 0::2], u32[:, 1::2] = words >> np.uint64(32), words & _LOW32
        rows = np.empty((self.chunks * end, 2), dtype=np.uint64)
        for c in range(self.chunks):
            keys = chunk_keys(words, c, self.chunk_bits)
            offsets = self._offsets[c * width : (c + 1) * width]  # a view: updated in place
            order = np.argsort(keys, kind="stable")
            new = np.take(_table_rows(u32, self._slice_words[c], positions), order, axis=0)
            if start == 0:  # a fresh table: one stable sort
                rows[c * end : (c + 1) * end] = new
            else:  # each new position at the end of its bucket, in position order
                at = offsets[keys[order].astype(np.int64) + 1].astype(np.int64) - c * start
                # 16-byte rows inserted as one 16-byte scalar each (np.insert along axis 0 of (n, 2) is ~5x slower)
                old = self._rows[c * start : (c + 1) * start].view(np.complex128).ravel()
                merged = np.insert(old, at, new.view(np.complex128).ravel())
                rows[c * end : (c + 1) * end] = merged.view(np.uint64).reshape(-1, 2)
            # Row numbers are absolute: chunk c's rows now start at c * end instead of c * start.
            offsets += np.uint32(c * (end - start))
            offsets[1:] += np.cumsum(np.bincount(keys, minlength=width - 1)).astype(np.uint32)
        self._rows = rows
        self.merged = end

    # --- reads --------------------------------------------------------------------------------------------

    def nbytes(self) -> int:
        tables = self._rows.nbytes + (self._offsets.nbytes if self._offsets is not None else 0)
        return int(self._words.nbytes + self._ids.nbytes + self._video_ids.nbytes + tables)

    def _probes(self, queries: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
        """Every probe of every chunk as an index into ``_offsets``, and its query and chunk (query x chunks + chunk)."""
        width = (1 << self.chunk_bits) + 1
        keys = np.stack([chunk_keys(queries, c, self.chunk_bits) for c in range(self.chunks)], axis=1)
        keys = keys.astype(np.int64)  # (queries, chunks)
        base = np.arange(self.chunks, dtype=np.int64) * width
        radii = chunk_radii(threshold, self.chunks)
        groups = []
        for radius in sorted({r for r in radii if r >= 0}):
            masks = self._masks.get(radius)
            if masks is None:
                masks = self._masks[radius] = _flip_masks(self.chunk_bits, radius).astype(np.int64)
            groups.append(([c for c, r in enumerate(radii) if r == radius], masks))
        probes = [
            ((keys[:, chunks, None] ^ masks[None, None, :]) + base[chunks, None]).ravel() for chunks, masks in groups
        ]
        query_chunk = self._query_chunks.get((len(queries), threshold))
        if query_chunk is None:  # the same for every search of as many query hashes: kept
            query_chunk = np.concatenate([
                np.broadcast_to(
                    np.arange(len(queries))[:, None, None] * self.chunks + np.array(chunks)[None, :, None],
                    (len(queries), len(chunks), len(masks)),
                ).ravel()
                for chunks, masks in groups
            ])  # fmt: skip
            if len(self._query_chunks) < 64:
                self._query_chunks[(len(queries), threshold)] = query_chunk
        return np.concatenate(probes), query_chunk

    def search(self, codes: np.ndarray, threshold: int, *, exclude_video_id: int | None = None) -> Matches:
        """Every stored hash within ``threshold`` bits of each query hash ((q, 32) uint8)."""
        queries = as_words(codes)
        qs, ps, ds = [], [], []
        if self.merged and self._offsets is not None:
            probes, query_chunk = self._probes(queries, threshold)
            lo = self._offsets[probes].astype(np.int64)
            counts = self._offsets[probes + 1].astype(np.int64) - lo
            hit = np.flatnonzero(counts)
            counts, lo, query_chunk = counts[hit], lo[hit], query_chunk[hit]
            # Every row of every non-empty bucket: lo + 0 .. count - 1.
            slots = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            rows = np.take(self._rows, slots, axis=0)
            query_chunk = np.repeat(query_chunk, counts)
            # The prefilter: the 96 bits beside the position (masked out), against the query's same 96 bits.
            x = rows ^ np.take(_slices(codes, self._slice_words), query_chunk, axis=0)
            x[:, 0] &= _HIGH32
            near = np.bitwise_count(x)
            near = np.flatnonzero(near[:, 0] + near[:, 1] <= threshold)
            q, pos = query_chunk[near] // self.chunks, (rows[near, 0] & _LOW32).astype(np.int64)
            distance = _distance(np.take(self._words, pos, axis=0), np.take(queries, q, axis=0))
            keep = distance <= threshold
            # A match is found through every chunk it is near in: one copy each.
            unique, first = np.unique(q[keep] * self.size + pos[keep], return_index=True)
            qs.append(unique // self.size)
            ps.append(unique % self.size)
            ds.append(distance[keep][first])
        if self.size > self.merged:  # the tail: every query against every hash
            tail = self._words[self.merged : self.size]
            distance = _distance(queries[:, None, :], tail[None, :, :])
            q, offset = np.nonzero(distance <= threshold)
            qs.append(q.astype(np.int64))
            ps.append(offset.astype(np.int64) + self.merged)
            ds.append(distance[q, offset])
        empty = np.empty(0, dtype=np.int64)
        if not qs:
            return Matches(empty, empty, empty, empty, empty)
        q, pos, distance = np.concatenate(qs), np.concatenate(ps), np.concatenate(ds)
        if exclude_video_id is not None:
            keep = self._video_ids[pos] != exclude_video_id
            q, pos, distance = q[keep], pos[keep], distance[keep]
        order = np.lexsort((pos, q, distance))
        q, pos, distance = q[order], pos[order], distance[order]
        return Matches(query=q, ids=self._ids[pos], video_ids=self._video_ids[pos], distance=distance, positions=pos)

    def video_ranks(self, found: Matches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per match of ``found``: its group (the query hash and the stored hash's exact value: a farm of reposts
        shares one group per second), the rank of its video among the group's videos (by video id, the earliest
        indexed first; a video's rows share a rank) and the number of videos in the group."""
        n = len(found.ids)
        if n == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        words = np.take(self._words, found.positions, axis=0)
        order = np.lexsort((found.video_ids, words[:, 3], words[:, 2], words[:, 1], words[:, 0], found.query))
        q, w, v = found.query[order], words[order], found.video_ids[order]
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = (q[1:] != q[:-1]) | (w[1:] != w[:-1]).any(axis=1)
        new_video = new_group.copy()
        new_video[1:] |= v[1:] != v[:-1]
        group = np.cumsum(new_group) - 1
        videos_before = np.cumsum(new_video) - 1  # distinct videos before this row, over all groups
        first = np.flatnonzero(new_group)
        rank = videos_before - videos_before[first][group]
        size = np.bincount(group, weights=new_video).astype(np.int64)[group]
        out_group, out_rank, out_size = (np.empty(n, dtype=np.int64) for _ in range(3))
        out_group[order], out_rank[order], out_size[order] = group, rank, size
        return out_group, out_rank, out_size


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between hashes as 4 uint64 words (last axis; broadcast). Gathers go through
    ``np.take`` and the four words are added by hand: fancy indexing of (n, 4) arrays and ``sum(axis=-1)``
    over four elements were each an order of magnitude slower at a million candidates."""
    x = np.bitwise_count(a ^ b).astype(np.int64)
    return x[..., 0] + x[..., 1] + x[..., 2] + x[..., 3]


def _grow(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
