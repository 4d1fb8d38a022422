"""The PDQ look-up index: PostgreSQL's ``FrameHash`` rows are the index; each process searches a copy kept in step.

PostgreSQL holds the truth (written by ``services.frame_hashes_index``, one video per transaction; backed up and
replicated with the data; ``manage.py rebuild_repro_index`` rewrites it). Each process that looks hashes up
keeps a ``hamming.MultiIndex`` of the rows and, before every search, reads the rows added since the last one
(``WHERE id > last_id``, one primary-key range scan; nothing when nothing is new). It cannot drift:

* New rows: every index writer takes one lock (``services._index_lock``) around allocating ids and committing,
  so ids become visible in id order and no row with a smaller id than one already read can appear later.
* Deleted or replaced rows (a re-indexed video gets new rows; a deleted video's rows go by cascade) stay in
  memory, but every match is confirmed against PostgreSQL before it is returned: the row must still exist and
  its video must be ready. When the copy holds far more rows than the table, it is rebuilt from scratch.
* A restarted worker has no copy: its first search loads every row (one binary COPY) and builds the tables.
* A table truncated or restored (a new relation file) or emptied (its largest id below ours) is reloaded from
  scratch.

One copy per process and database (threads share it under a lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection

from moderation.reproduction import hamming, matching

logger = logging.getLogger(__name__)

TABLE = "moderation_framehash"
# How often (seconds) a process compares its copy's size with the table's live row count.
COMPACT_CHECK_S = 60.0
# COPY ... (FORMAT BINARY) of (id int8, video_id int8, quality int2, hash bit(256)): fixed-width rows.
_ROW = np.dtype(
    [("n", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_video", ">i4"), ("video_id", ">i8"), ("l_q", ">i4"),
     ("quality", ">i2"), ("l_hash", ">i4"), ("bitlen", ">i4"), ("hash", "u1", (hamming.HASH_BYTES,))]
)  # fmt: skip
_HEADER = 19  # signature (11), flags (4), header extension length (4)


@dataclass
class LoadStats:
    rows: int = 0
    seconds: float = 0.0


@dataclass
class _Copy:
    index: hamming.MultiIndex = field(default_factory=lambda: _new_index())
    last_id: int = 0
    filenode: int = 0  # the table's relation file when the copy was loaded (TRUNCATE makes a new one)
    checked_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_load: LoadStats = field(default_factory=LoadStats)


_COPIES: dict[tuple[str, str, str], _Copy] = {}
_COPIES_LOCK = threading.Lock()


def _database_key() -> tuple[str, str, str]:
    s = connection.settings_dict
    return (str(s.get("HOST") or ""), str(s.get("PORT") or ""), str(s.get("NAME") or ""))


def _copy_for_connection() -> _Copy:
    key = _database_key()
    with _COPIES_LOCK:
        if key not in _COPIES:
            _COPIES[key] = _Copy()
        return _COPIES[key]


def _parse(data: bytes) -> np.ndarray:
    body = memoryview(data)[_HEADER : len(data) - 2]  # the trailer is int16 -1
    if len(body) % _ROW.itemsize:
        raise ValueError(f"unexpected COPY row size: {len(body)} bytes for rows of {_ROW.itemsize}")
    return np.frombuffer(body, dtype=_ROW)


def _read_rows(after_id: int) -> np.ndarray:
    """Every ``FrameHash`` row with ``id > after_id`` (id order), as a numpy record array."""
    sql = (
        f"COPY (SELECT id::int8, video_id::int8, quality::int2, hash FROM {TABLE} "
        f"WHERE id > {int(after_id)} ORDER BY id) TO STDOUT (FORMAT BINARY)"
    )
    buffer = bytearray()
    connection.ensure_connection()
    with connection.connection.cursor() as cur, cur.copy(sql) as copy:
        for chunk in copy:
            buffer += chunk
    if not buffer:
        return np.empty(0, dtype=_ROW)
    return _parse(bytes(buffer))


@dataclass(frozen=True)
class TableMark:
    """The ``FrameHash`` table as a search's catch-up needs it: its largest id and its relation file (``MARK_SQL``,
    or its columns in another statement: ``selectors.hash_queries_marked`` reads them with a video's hashes)."""

    newest: int
    filenode: int


# Two columns: the largest id (0 for an empty table) and the relation file.
MARK_SQL = f"SELECT COALESCE(MAX(id), 0), pg_relation_filenode('{TABLE}'::regclass) FROM {TABLE}"


def table_mark() -> TableMark:
    with connection.cursor() as cur:
        cur.execute(MARK_SQL)
        newest, filenode = cur.fetchone()
    return TableMark(int(newest), int(filenode or 0))


def _catch_up(state: _Copy, mark: TableMark | None = None) -> None:
    """Read the rows added since the copy's last read. ``mark``: the table as the caller read it, before this
    process's lock; one that says the table shrank or changed files is read again here, since another thread may
    have caught up past it in between (only a mark read under the lock may reset the copy)."""
    if mark is None or mark.newest < state.last_id or mark.filenode != state.filenode:
        mark = table_mark()
    newest, filenode = mark.newest, mark.filenode
    if newest < state.last_id or filenode != state.filenode:  # emptied, truncated or restored: start over
        _reset(state)
        state.filenode = filenode
    now = time.monotonic()
    if now - state.checked_at > COMPACT_CHECK_S:
        state.checked_at = now
        with connection.cursor() as cur:
            cur.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = %s::regclass", [TABLE])
            row = cur.fetchone()
        live = int(row[0]) if row else 0
        if state.index.size > 2 * live + 10_000:  # mostly rows deleted since: rebuild smaller
            logger.info("PDQ index copy holds %s rows for %s live ones: reloading", state.index.size, live)
            _reset(state)
    if newest <= state.last_id:
        return
    started, full = time.perf_counter(), state.last_id == 0
    rows = _read_rows(state.last_id)
    if len(rows):
        usable = rows[rows["quality"] >= matching.MIN_QUALITY]  # near-flat frames are never looked up
        state.index.add(usable["hash"], usable["id"].astype(np.int64), usable["video_id"].astype(np.int64))
        state.last_id = int(rows["id"][-1])
    if full:  # a full load: what a restart costs
        state.last_load = LoadStats(rows=len(rows), seconds=time.perf_counter() - started)


def layout() -> tuple[int, int]:
    """``settings.REPRO_PDQ_CHUNKS`` ("12x21": 12 chunks of 21 bits) as (chunks, bits); see ``hamming``."""
    from django.conf import settings

    return layout_parse(str(settings.REPRO_PDQ_CHUNKS))


def layout_parse(value: str) -> tuple[int, int]:
    """A REPRO_PDQ_CHUNKS value as (chunks, bits); ValueError saying the form when it is not one (also checked when a
    process starts: ``workbench.checks.SETTING_CHOICES``)."""
    text = value.lower()
    chunks, _x, bits = text.partition("x")
    if not (chunks.isdigit() and bits.isdigit()) or int(chunks) * int(bits) > 256 or not 8 <= int(bits) <= 26:
        raise ValueError(f"REPRO_PDQ_CHUNKS must be CHUNKSxBITS within 256 bits, 8-26 bits a chunk, not {text!r}")
    return int(chunks), int(bits)


def _new_index() -> hamming.MultiIndex:
    chunks, bits = layout()
    return hamming.MultiIndex(chunks=chunks, chunk_bits=bits)


def _reset(state: _Copy) -> None:
    state.index = _new_index()
    state.last_id = 0


def reload() -> LoadStats:
    """Drop this process's copy and load it again from PostgreSQL (what a restarted worker does)."""
    state = _copy_for_connection()
    with state.lock:
        _reset(state)
        _catch_up(state)
        return state.last_load


def discard() -> None:
    """Forget every copy this process holds (what a worker restart loses); the next search loads again."""
    with _COPIES_LOCK:
        _COPIES.clear()


def copy_stats() -> dict[str, Any]:
    """This process's copy: rows, bytes, the last id read and the last full load's time."""
    state = _copy_for_connection()
    return {"rows": state.index.size, "bytes": state.index.nbytes(), "last_id": state.last_id,
            "load_rows": state.last_load.rows, "load_s": round(state.last_load.seconds, 3)}  # fmt: skip


@dataclass(frozen=True)
class RawHit:
    frame_hash_id: int
    query: int  # index into the queries
    distance: int
    group: int = -1  # with ``per_hash``: the query hash and the stored hash's exact value (``MultiIndex.video_ranks``)
    more: bool = False  # with ``per_hash``: the group holds videos past this tier


def search(
    hex_hashes: Sequence[str], *, threshold: int, exclude_video_id: int | None = None, mark: TableMark | None = None,
    per_hash: int = 0, tier: int = 0,
) -> list[RawHit]:  # fmt: skip
    """Rows within ``threshold`` bits of each hash, from this process's copy after catching up (not yet confirmed).
    ``mark``: the table's ``TableMark`` read by the caller (saves the catch-up's own query: one round trip).

    ``per_hash``: of the videos that hold one stored hash value matched by one query hash (a farm of reposts: a
    thousand videos, one value per second), only those ranked ``tier * per_hash`` to ``(tier + 1) * per_hash - 1``
    by video id (the earliest first; every row of such a video); ``more`` says which groups go on past them. A query
    with fewer matches than ``per_hash`` has nothing to cut: tier 0 is all of it."""
    if not hex_hashes:
        return []
    codes = hamming.hex_codes(list(hex_hashes))
    state = _copy_for_connection()
    with state.lock:
        _catch_up(state, mark)
        found = state.index.search(codes, threshold, exclude_video_id=exclude_video_id)
        if per_hash > 0 and len(found.ids) > per_hash:
            group, rank, size = state.index.video_ranks(found)
            keep = np.flatnonzero((rank >= tier * per_hash) & (rank < (tier + 1) * per_hash))
            more = size[keep] > (tier + 1) * per_hash
            return [
                RawHit(int(i), int(q), int(d), int(g), bool(m))
                for i, q, d, g, m in zip(
                    found.ids[keep].tolist(), found.query[keep].tolist(), found.distance[keep].tolist(),
                    group[keep].tolist(), more.tolist(), strict=True,
                )
            ]  # fmt: skip
    if per_hash > 0 and tier > 0:
        return []
    return [
        RawHit(int(i), int(q), int(d))
        for i, q, d in zip(found.ids.tolist(), found.query.tolist(), found.distance.tolist(), strict=True)
    ]
