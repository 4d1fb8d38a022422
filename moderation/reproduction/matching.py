"""Pure functions of reproduction matching: PDQ bits, distances and vPDQ-style alignment.

No Django, no database: the services feed these with rows and the tests with synthetic hashes. The
Hamming index that finds the hashes within ``DEFAULT_THRESHOLD`` of a query is ``hamming`` (multi-index
hashing over 21-bit chunks, exact), kept in step with PostgreSQL by ``pdq_index``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HASH_BITS = 256
# PDQ's own recommendation: hashes within 31 bits are the same picture.
DEFAULT_THRESHOLD = 31
# PDQ quality below this is a near-flat frame whose hash matches too much to mean anything.
MIN_QUALITY = 50


def hex_to_bits(hex_hash: str) -> str:
    """64 hex digits → the 256-character '0'/'1' string Postgres reads as ``bit(256)``."""
    return format(int(hex_hash, 16), f"0{HASH_BITS}b")


def hamming_hex(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


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
