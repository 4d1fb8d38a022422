"""An exact in-memory Hamming range index for 256-bit PDQ hashes: multi-index hashing over long chunks.

No Django, no database (``pdq_index`` keeps one of these in step with PostgreSQL). numpy only.

The 256 bits are cut into ``CHUNKS`` = 12 chunks of ``CHUNK_BITS`` = 21 bits (252 bits; the last 4 are
only compared, never looked up). Two hashes within ``threshold`` bits differ, by the pigeonhole
principle, in at most ``threshold // CHUNKS`` bits of some chunk — 2 for PDQ's threshold 31 (12 chunks
of 3 or more differing bits would make 36). So a query probes, per chunk, its own 21-bit value and every
value within 2 bits of it (1 + 21 + 210 = 232 probes, 2,784 per hash) and verifies what it finds with the
exact distance over all 256 bits: nothing within the threshold is ever missed.

Why 21 bits and not the 16 of the earlier PostgreSQL index: a probe returns about N / 2^b stored hashes,
so with 16-bit chunks every probe of a 1.6M-hash library (200k videos) returned ~24 rows and the work grew
with the library; with 21-bit chunks a probe returns ~0.8 rows at 1.6M hashes and the fixed cost of the
2,784 probes (direct array look-ups, no search) dominates up to a few million hashes.

Layout (per chunk, compressed sparse rows): ``offsets[c][v]`` .. ``offsets[c][v + 1]`` is the range of
``rows[c]`` holding the positions of the stored hashes whose chunk ``c`` equals ``v`` — one direct
array read per probe. Hashes are appended: the newest ``delta_max`` at most sit in a small tail that
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


def _flip_masks(bits: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for combo in itertools.combinations(range(bits), r):
            masks.append(sum(1 << b for b in combo))
    return np.array(masks, dtype=np.uint32)


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


def hex_codes(hex_hashes: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in hex_hashes), dtype=np.uint8).reshape(-1, HASH_BYTES)


@dataclass(frozen=True)
class Matches:
    """Stored hashes within the threshold of a query: parallel arrays, ordered by distance."""

    query: np.ndarray  # index of the query hash
    ids: np.ndarray  # the stored hash's id (the caller's, e.g. a PostgreSQL row id)
    video_ids: np.ndarray
    distance: np.ndarray


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
        self._offsets: list[np.ndarray] | None = None  # allocated on the first merge (2^bits + 1 each)
        self._rows: list[np.ndarray] = [np.empty(0, dtype=np.uint32) for _ in range(chunks)]
        self._masks: dict[int, np.ndarray] = {}

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
        width = 1 << self.chunk_bits
        if self._offsets is None:
            self._offsets = [np.zeros(width + 1, dtype=np.uint32) for _ in range(self.chunks)]
        positions = np.arange(start, end, dtype=np.uint32)
        words = self._words[start:end]
        for c in range(self.chunks):
            keys = chunk_keys(words, c, self.chunk_bits)
            offsets = self._offsets[c]
            if start == 0:  # a fresh table: one stable sort
                order = np.argsort(keys, kind="stable")
                self._rows[c] = positions[order]
            else:  # each new position at the end of its bucket, in position order
                order = np.argsort(keys, kind="stable")
                at = offsets[keys[order].astype(np.int64) + 1].astype(np.int64)
                self._rows[c] = np.insert(self._rows[c], at, positions[order])
            offsets[1:] += np.cumsum(np.bincount(keys, minlength=width)).astype(np.uint32)
        self.merged = end

    # --- reads --------------------------------------------------------------------------------------------

    def nbytes(self) -> int:
        tables = sum(r.nbytes for r in self._rows) + sum(o.nbytes for o in self._offsets or [])
        return int(self._words.nbytes + self._ids.nbytes + self._video_ids.nbytes + tables)

    def search(self, codes: np.ndarray, threshold: int, *, exclude_video_id: int | None = None) -> Matches:
        """Every stored hash within ``threshold`` bits of each query hash ((q, 32) uint8)."""
        queries = as_words(codes)
        pair_q: list[np.ndarray] = []
        pair_pos: list[np.ndarray] = []
        if self.merged and self._offsets is not None:
            radius = max(0, threshold) // self.chunks
            masks = self._masks.get(radius)
            if masks is None:
                masks = self._masks[radius] = _flip_masks(self.chunk_bits, radius)
            for c in range(self.chunks):
                probes = (chunk_keys(queries, c, self.chunk_bits)[:, None] ^ masks[None, :]).ravel().astype(np.int64)
                lo = self._offsets[c][probes].astype(np.int64)
                counts = self._offsets[c][probes + 1].astype(np.int64) - lo
                hit = counts > 0
                if not hit.any():
                    continue
                counts, lo = counts[hit], lo[hit]
                query_of = (np.arange(len(probes)) // len(masks))[hit]
                # Every slot of every non-empty bucket: bucket start + 0 .. count - 1.
                starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
                slots = starts + np.arange(int(counts.sum()))
                pair_q.append(np.repeat(query_of, counts))
                pair_pos.append(self._rows[c][slots].astype(np.int64))
        qs, ps, ds = [], [], []
        if pair_q:
            q, pos = np.concatenate(pair_q), np.concatenate(pair_pos)
            distance = _distance(np.take(self._words, pos, axis=0), np.take(queries, q, axis=0))
            keep = distance <= threshold
            # A match is found through every chunk it is near in: one copy each (few, so unique is cheap
            # here; deduplicating the thousands of candidates before verifying cost more than verifying them).
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
            return Matches(empty, empty, empty, empty)
        q, pos, distance = np.concatenate(qs), np.concatenate(ps), np.concatenate(ds)
        if exclude_video_id is not None:
            keep = self._video_ids[pos] != exclude_video_id
            q, pos, distance = q[keep], pos[keep], distance[keep]
        order = np.lexsort((pos, q, distance))
        q, pos, distance = q[order], pos[order], distance[order]
        return Matches(query=q, ids=self._ids[pos], video_ids=self._video_ids[pos], distance=distance)


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
