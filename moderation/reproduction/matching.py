"""Pure functions of reproduction matching: PDQ bits, multi-index hash keys and vPDQ-style alignment.

No Django, no database: the services feed these with rows and the tests with synthetic hashes.

Multi-index hashing (as FAISS ``IndexBinaryMultiHash`` does for PDQ in Meta's HMA): the 256 bits are
split into ``CHUNKS`` = 16 chunks of 16 bits. If two hashes differ in at most ``d`` bits, then by the
pigeonhole principle at least one chunk differs in at most ``d // CHUNKS`` bits — for the PDQ match
threshold 31 that is 1 bit (16 chunks each differing in 2 or more bits would make 32). So a query
looks up, per chunk, its own value and every value one bit away (17 keys per chunk, 272 per hash)
in the chunk's B-tree index, and verifies the few rows it gets with the exact Hamming distance. The lookup is
exact, not approximate: no match within the threshold is ever missed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HASH_BITS = 256
CHUNKS = 16
CHUNK_BITS = HASH_BITS // CHUNKS
# PDQ's own recommendation: hashes within 31 bits are the same picture.
DEFAULT_THRESHOLD = 31
# PDQ quality below this is a near-flat frame whose hash matches too much to mean anything.
MIN_QUALITY = 50


def hex_to_bits(hex_hash: str) -> str:
    """64 hex digits → the 256-character '0'/'1' string Postgres reads as ``bit(256)``."""
    return format(int(hex_hash, 16), f"0{HASH_BITS}b")


def bits_to_int(bits: str) -> int:
    return int(bits, 2)


def hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def chunk_values(hex_hash: str) -> list[int]:
    """The 16 chunks of 16 bits, most significant first."""
    value = int(hex_hash, 16)
    mask = (1 << CHUNK_BITS) - 1
    return [(value >> (CHUNK_BITS * (CHUNKS - 1 - i))) & mask for i in range(CHUNKS)]


def _key(chunk: int, value: int) -> int:
    return chunk << CHUNK_BITS | value


def index_keys(hex_hash: str) -> list[int]:
    """What a stored hash is indexed under: one key per chunk (chunk number and its value)."""
    return [_key(i, v) for i, v in enumerate(chunk_values(hex_hash))]


def chunk_columns(hex_hash: str) -> dict[str, int]:
    """The stored chunk columns ``c0`` … ``c15`` of a hash."""
    return {f"c{i}": v for i, v in enumerate(chunk_values(hex_hash))}


def query_chunk_values(
    hex_hashes: list[str], threshold: int = DEFAULT_THRESHOLD, *, exact: bool = True
) -> list[list[int]]:
    """Per chunk, every value a stored hash within ``threshold`` of any query hash has in at least one chunk."""
    per_chunk: list[set[int]] = [set() for _ in range(CHUNKS)]
    for h in hex_hashes:
        for key in query_keys(h, threshold, exact=exact):
            per_chunk[key >> CHUNK_BITS].add(key & ((1 << CHUNK_BITS) - 1))
    return [sorted(values) for values in per_chunk]


def flip_radius(threshold: int) -> int:
    """Bits a query flips per chunk so that no hash within ``threshold`` is missed."""
    return max(0, threshold) // CHUNKS


def query_keys(hex_hash: str, threshold: int = DEFAULT_THRESHOLD, *, exact: bool = True) -> list[int]:
    """Every index key a hash within ``threshold`` bits of ``hex_hash`` has at least one of.

    ``exact=False`` looks up each chunk's own value only (16 keys, not 272): every hash within 15
    bits is still found, and one within 16-31 bits whenever any of its 16 chunks is untouched (for
    31 bits spread at random, about 9 frames in 10). Retrieval needs one matched second per video —
    the alignment then compares every second exactly — so the cheaper look-up loses almost nothing.
    """
    radius = flip_radius(threshold) if exact else 0
    keys: list[int] = []
    for i, value in enumerate(chunk_values(hex_hash)):
        for r in range(radius + 1):
            for bits in itertools.combinations(range(CHUNK_BITS), r):
                flipped = value
                for b in bits:
                    flipped ^= 1 << b
                keys.append(_key(i, flipped))
    return keys


# --- vPDQ-style alignment ---------------------------------------------------------------------------

# Time scales tried when aligning (a copy sped up or slowed down by up to ~10%).
SCALES = (1.0, 0.9, 1.1)


@dataclass
class Alignment:
    """How two videos line up: ``t_original = scale * t_copy + offset`` for the matched seconds."""

    offset: float = 0.0
    scale: float = 1.0
    mirrored: bool = False
    matches: list[dict[str, Any]] = field(default_factory=list)  # {"t": copy s, "t_orig": original s, "d": bits}
    coverage_copy: float = 0.0
    coverage_original: float = 0.0

    @property
    def matched_seconds(self) -> int:
        return len(self.matches)

    def as_evidence(self) -> dict[str, Any]:
        return {
            "offset": round(self.offset, 2), "scale": self.scale, "mirrored": self.mirrored,
            "coverage_copy": round(self.coverage_copy, 4), "coverage_original": round(self.coverage_original, 4),
            "matches": self.matches,
        }  # fmt: skip


def _ints(hashes: Sequence[tuple[float, str]]) -> list[tuple[float, int]]:
    return [(float(t), int(h, 16)) for t, h in hashes if h]


def align(
    copy: Sequence[tuple[float, str]],
    original: Sequence[tuple[float, str]],
    *,
    threshold: int = DEFAULT_THRESHOLD,
    copy_mirrored: Sequence[tuple[float, str]] = (),
    scales: Sequence[float] = SCALES,
) -> Alignment:
    """The time offset (and speed, and mirroring) under which most seconds of ``copy`` match ``original``.

    Inputs are per-second ``(timestamp, hex hash)``. Every pair of seconds within ``threshold`` bits
    votes for the offset ``t_orig - scale * t_copy`` (rounded to the second); the offset with the most
    distinct matched seconds wins (ties: fewer total bits). Coverage is the matched share of each
    video's seconds. ``copy_mirrored`` are the copy's hashes of horizontally flipped frames.
    """
    orig = _ints(original)
    best = Alignment()
    best_key: tuple[int, int] = (0, 0)
    if not orig:
        return best
    for mirrored, source in ((False, copy), (True, copy_mirrored)):
        hashes = _ints(source)
        if not hashes:
            continue
        pairs = [(tc, to, (hc ^ ho).bit_count()) for tc, hc in hashes for to, ho in orig]
        close = [(tc, to, d) for tc, to, d in pairs if d <= threshold]
        if not close:
            continue
        for scale in scales:
            votes: dict[float, dict[float, tuple[float, int]]] = {}
            for tc, to, d in close:
                offset = float(round(to - scale * tc))
                per_second = votes.setdefault(offset, {})
                # One match per copy second: its closest original second under this offset.
                if tc not in per_second or d < per_second[tc][1]:
                    per_second[tc] = (to, d)
            for offset, per_second in votes.items():
                key = (len(per_second), -sum(d for _to, d in per_second.values()))
                # Prefer the plain reading (scale 1, not mirrored) on ties.
                if key > best_key:
                    best_key = key
                    matched_orig = {to for to, _d in per_second.values()}
                    best = Alignment(
                        offset=float(offset), scale=scale, mirrored=mirrored,
                        matches=[{"t": tc, "t_orig": to, "d": d} for tc, (to, d) in sorted(per_second.items())],
                        coverage_copy=len(per_second) / len(hashes),
                        coverage_original=len(matched_orig) / len(orig),
                    )  # fmt: skip
    return best
