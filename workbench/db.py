"""Statements worth preparing: a server-side prepared statement for a hot, fixed statement whose planning costs
more than its run.

Django's psycopg cursors bind parameters on the client, so every statement is planned again each time it runs.
That is right for the ORM's varied queries, but the review claim (``moderation.review.services``) compiles the
visibility rule into each of its four legs: Postgres spends ~20 ms planning a statement that runs in ~1 ms.
``prepared_cursor`` runs a statement with server-side binding and ``prepare=True``: the first run on a connection
prepares it, later runs reuse it, and after five custom plans Postgres keeps the generic plan when it is as good
(``plan_cache_mode``), so planning drops out.

Prepared statements live in the database session. Through a transaction-mode connection pooler older than
PgBouncer 1.21 (which tracks them, ``max_prepared_statements``) set ``DATABASE_PREPARED_STATEMENTS=false``
(``workbench/settings.py``): the connection's ``prepare_threshold`` is then ``None`` and these statements run
unprepared, planned each time, with the same results. With it on, the threshold is so high that nothing else is
ever prepared automatically (Django's client-binding cursors never prepare)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connection


class _PreparingCursor(psycopg.Cursor[Any]):
    """A server-side binding cursor whose every statement asks to be prepared."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor on the default connection (its transaction, its logging: ``assertNumQueries`` counts it) whose
    statements are prepared once per connection and reused. Parameters are bound by the server, so they must be
    typed values in ``%(name)s`` / ``%s`` places (no SQL built from them)."""
    connection.ensure_connection()
    raw: Any = _PreparingCursor(connection.connection)  # django-stubs type these as taking Django's wrapper
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        yield cursor
