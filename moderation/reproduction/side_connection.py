"""Side PostgreSQL connections per thread, for reads that run while the thread's own connection does other work.

Reproduction retrieval's embedding neighbours are two independent HNSW scans (picture, transcript). Each is sent
(libpq's asynchronous send, no thread) on its own side connection (``slot`` "picture", "text") before the PDQ
look-up, so two backends walk their graphs while this process searches its PDQ copy and confirms the hits on
Django's connection; then their rows are read (``selectors.video_neighbours_send``, ``services.candidates_retrieve``;
measured in bench/RESULTS.md, issue 20). ``settings.REPRO_NEIGHBOURS_PARALLEL`` turns it off (one statement on
Django's connection, after the PDQ look-up).

Only outside a transaction (autocommit, as the retrieval task runs): a side connection sees committed rows only,
so inside a caller's transaction (and in tests, which run inside one) nothing is sent here and the caller runs its
single statement. A side connection is opened on first use, kept for the thread (two more PostgreSQL connections
per worker thread that retrieves) and closed with Django's connection (so it follows CONN_MAX_AGE and never blocks
a test database's teardown), reopened when broken, and never shared across a fork (a child opens its own).
Any failure here (connect, send, a broken result) makes ``send`` return None or ``Pending.rows`` raise
``SideConnectionError``: the caller runs the statement on its own connection instead, so retrieval never fails for it.

Where the project prepares statements (``DATABASE_PREPARED_STATEMENTS``, ``workbench/db.py``: ``prepares``), a
statement sent with ``params`` is a server-side prepared statement of its side connection, parsed and planned once
per connection instead of once per retrieval (the generic plan: ``plan_cache_mode``), with the settings it needs
(``session``) set on the connection when they change: each scan a little less backend CPU (bench/RESULTS.md,
issue 20, hrepro22).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

_LOCAL = threading.local()


class SideConnectionError(Exception):
    """The side connection could not run the statement (the caller runs it itself)."""


@dataclass
class _Side:
    conn: Any  # psycopg.Connection
    pid: int
    owner: Any  # a weak reference to Django's connection it runs beside (a new one there: a new one here)
    prepared: set[str] = field(default_factory=set)  # the statements prepared on it (by name)
    session: str = ""  # the last ``session`` SQL run on it (``send``)


def _close_quietly(conn: Any, pid: int) -> None:
    if pid == os.getpid():  # never from a forked child: the socket is its parent's
        with contextlib.suppress(Exception):
            conn.close()


def _key(slot: str) -> tuple[str, str, str, str, str]:
    s = connection.settings_dict
    return (
        str(s.get("HOST") or ""),
        str(s.get("PORT") or ""),
        str(s.get("NAME") or ""),
        str(s.get("USER") or ""),
        slot,
    )


def enabled() -> bool:
    """Whether a statement may go to the side connection now: the setting is on and Django's connection is in
    autocommit outside any transaction (so both connections see the same committed rows)."""
    if not getattr(settings, "REPRO_NEIGHBOURS_PARALLEL", True) or connection.in_atomic_block:
        return False
    return connection.vendor == "postgresql" and bool(connection.get_autocommit())


def prepares() -> bool:
    """Whether statements are prepared server-side (``DATABASE_PREPARED_STATEMENTS``: the connection's
    ``prepare_threshold``, as ``workbench.db.prepare_marked`` reads it); behind a pooler that cannot keep prepared
    statements it is off and ``send`` takes plain SQL."""
    connection.ensure_connection()
    return getattr(connection.connection, "prepare_threshold", None) is not None


def _side(slot: str) -> _Side:
    sides: dict[tuple[str, ...], _Side] = getattr(_LOCAL, "sides", None) or {}
    _LOCAL.sides = sides
    key = _key(slot)
    connection.ensure_connection()
    raw = connection.connection
    side = sides.get(key)
    if side is not None and (
        side.pid != os.getpid() or side.owner() is not raw or side.conn.closed or side.conn.broken
    ):
        sides.pop(key)
        _close_quietly(side.conn, side.pid)  # a forked child leaves its parent's socket alone
        side = None
    if side is None:
        import psycopg

        params = connection.get_connection_params()
        side = _Side(psycopg.connect(**params, autocommit=True), os.getpid(), weakref.ref(raw))
        # Closed with Django's connection (request or task end, CONN_MAX_AGE, a test database's teardown), so it
        # never outlives it: the next search opens a new one beside the new connection.
        weakref.finalize(raw, _close_quietly, side.conn, side.pid)
        sides[key] = side
    return side


def close() -> None:
    """Close this thread's side connections (the next ``send`` opens one again)."""
    sides: dict[tuple[str, ...], _Side] = getattr(_LOCAL, "sides", None) or {}
    for side in sides.values():
        _close_quietly(side.conn, side.pid)
    sides.clear()


def backend_pids() -> list[int]:
    """This thread's open side connections' PostgreSQL backends (slot order): for CPU accounting."""
    sides: dict[tuple[str, ...], _Side] = getattr(_LOCAL, "sides", None) or {}
    here = _key("")[:-1]
    return [
        int(side.conn.pgconn.backend_pid)
        for key, side in sorted(sides.items())
        if key[:-1] == here and not side.conn.closed
    ]


class Pending:
    """A statement sent on the side connection; ``rows`` waits for its last result (every value as text)."""

    def __init__(self, side: _Side) -> None:
        self._side = side
        self._done = False

    def rows(self) -> list[tuple[str | None, ...]]:
        from psycopg import pq

        self._done = True
        pgconn = self._side.conn.pgconn
        last = None
        try:
            while (result := pgconn.get_result()) is not None:
                last = result
        except Exception as exc:  # the connection broke under the statement
            _drop(self._side)
            raise SideConnectionError(str(exc)) from exc
        if last is None or last.status != pq.ExecStatus.TUPLES_OK:
            message = last.error_message.decode(errors="replace") if last is not None else "no result"
            _drop(self._side)
            raise SideConnectionError(message)
        return [
            tuple(None if v is None else v.decode() for v in (last.get_value(i, j) for j in range(last.nfields)))
            for i in range(last.ntuples)
        ]

    def discard(self) -> None:
        """Wait out the statement and drop its result (when the caller gave up on it)."""
        if not self._done:
            with contextlib.suppress(SideConnectionError):
                self.rows()


def _drop(side: _Side) -> None:
    sides: dict[tuple[str, ...], _Side] = getattr(_LOCAL, "sides", None) or {}
    for key, value in list(sides.items()):
        if value is side:
            sides.pop(key)
    _close_quietly(side.conn, side.pid)


def send(sql: str, *, slot: str = "text", params: Sequence[Any] | None = None, session: str = "") -> Pending | None:
    """Send ``sql`` on this thread's side connection ``slot`` without waiting; None when it may not (``enabled``) or
    cannot (it did not connect or the send failed: logged, the caller runs it).

    Without ``params``: ``sql`` as a simple query (no parameters; several statements allowed, the last one's rows
    read). With ``params`` (``$1``, ``$2``, ... in ``sql``, only where ``prepares``): one statement, prepared on the
    side connection the first time it goes there and executed with ``params`` every time (no parsing or planning
    per send); ``session`` (SQL setting what the statement depends on, e.g. pgvector's settings) runs on the
    connection first whenever it differs from the last ``session`` run there."""
    if not enabled():
        return None
    try:
        side = _side(slot)
        pgconn = side.conn.pgconn
        if params is None:
            pgconn.send_query(sql.encode())
        else:
            if session != side.session:
                side.conn.execute(session)
                side.session = session
            name = "side_" + hashlib.sha256(sql.encode()).hexdigest()[:24]
            if name not in side.prepared:
                _prepare(pgconn, name, sql)
                side.prepared.add(name)
            pgconn.send_query_prepared(name.encode(), [str(value).encode() for value in params])
    except Exception as exc:  # cannot connect or send: the caller runs the statement on its own connection
        logger.warning("side connection unavailable, neighbours run in one statement: %s", exc)
        stale = getattr(_LOCAL, "sides", {}).get(_key(slot))
        if stale is not None:
            _drop(stale)
        return None
    return Pending(side)


def _prepare(pgconn: Any, name: str, sql: str) -> None:
    from psycopg import pq

    result = pgconn.prepare(name.encode(), sql.encode())
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise SideConnectionError(result.error_message.decode(errors="replace"))
