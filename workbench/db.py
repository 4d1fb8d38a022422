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
ever prepared automatically (Django's client-binding cursors never prepare).

The ORM's statements that carry the visibility rule (``moderation.media.selectors.video_open_to_q``: its SQL holds
``PREPARE_MARK``) are prepared the same way through ``prepare_marked``, an execute wrapper on every connection
(``WorkbenchConfig.ready``): the rule's EXISTS legs took 3-50 ms per screen to plan (the video page's three
statements ~17 ms, the pair queue's five ~50 ms) for ~1 ms of work. Their SQL is the same for every user (ids are
parameters), so each screen's statement is prepared once per connection. The query log shows them, as the claim,
with their values (``_QueryText``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from django.db import connection
from django.db.models import QuerySet, Value
from django.db.models.expressions import RawSQL


class _PreparingCursor(psycopg.Cursor[Any]):
    """A server-side binding cursor whose every statement asks to be prepared."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        result = super().execute(query, params, prepare=True, binary=binary)
        if self._query is None:  # psycopg keeps no query for a prepared run: the query log read None
            self._query = cast(Any, _QueryText(self.connection, query, params))
        return result


class _QueryText:
    """What Django's query log reads of a cursor's last statement (``cursor._query.query``, its
    ``last_executed_query``): the statement with its values, rendered only when read (debug, tests)."""

    def __init__(self, connection: Any, query: Any, params: Any) -> None:
        self._connection, self._statement, self._params = connection, query, params

    @property
    def query(self) -> bytes:
        try:
            return psycopg.ClientCursor(self._connection).mogrify(self._statement, self._params).encode()
        except (psycopg.Error, TypeError, ValueError):  # a value the client cannot render: the statement as sent
            return str(self._statement).encode()


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


# In a statement's SQL: run it prepared (``prepare_marked``). A comment, so the statement means the same without it.
PREPARE_MARK = "/* prepared */"


def prepare_marked(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Django execute wrapper: a statement whose SQL holds ``PREPARE_MARK`` runs on a preparing cursor
    (``prepared_cursor``'s), which then stays the Django cursor's own until it is closed (the ORM fetches its rows
    from it). Anything else, an ``executemany``, a named (server-side) cursor of ``QuerySet.iterator()`` and any
    statement while prepared statements are off (``prepare_threshold`` None) run as they come."""
    cursor = context["cursor"]
    raw = cursor.cursor
    if (
        not many
        and PREPARE_MARK in sql
        and not isinstance(raw, _PreparingCursor | psycopg.ServerCursor)
        and raw.connection.prepare_threshold is not None
    ):
        cursor.cursor = _PreparingCursor(raw.connection)
        raw.close()
    return execute(sql, params, many, context)


def install_prepare_marked(*, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: ``prepare_marked`` as the innermost execute wrapper of a PostgreSQL
    connection (first in the list: ``connection.execute_wrapper`` blocks push and pop at its end)."""
    if connection.vendor == "postgresql" and prepare_marked not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, prepare_marked)


@contextmanager
def session_lock_try(name: str) -> Iterator[bool]:
    """A session-level PostgreSQL advisory lock on ``name`` (hashed to a bigint), tried without waiting: yields whether
    it was taken, and releases it on leaving if it was (or with the connection, should the process die)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [name])
        got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])


def aggregate_row(qs: QuerySet[Any], **aggregates: Any) -> QuerySet[Any]:
    """``qs.aggregate(**aggregates)``, not run: a query of one row (grouped by nothing, so one row also when ``qs``
    finds none), to be read beside others in one statement (``aggregate_rows_read``)."""
    return qs.order_by().annotate(_whole=Value(1)).values("_whole").annotate(**aggregates).values(*aggregates)


def aggregate_rows_read(rows: dict[str, QuerySet[Any]]) -> dict[str, dict[str, Any]]:
    """Each of ``rows`` (``aggregate_row`` queries, each one row) read in one statement: the rows side by side, a
    CROSS JOIN of the aggregates, each computed as it would be alone. Per key, its row as ``aggregate`` gives it
    (the values as the driver reads them: counts are ints). Panels and pages that show several tables' counts pay
    one round trip and one statement instead of one each."""
    if not rows:
        return {}
    parts: list[str] = []
    params: list[Any] = []
    widths: list[int] = []
    for i, qs in enumerate(rows.values()):
        sql, part_params = qs.query.sql_with_params()
        parts.append(f"({sql}) AS part{i}")
        params.extend(part_params)
        widths.append(len(qs.query.annotation_select))
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM " + " CROSS JOIN ".join(parts), params)
        names = [column[0] for column in cursor.description]
        values = cursor.fetchone()
    read: dict[str, dict[str, Any]] = {}
    start = 0
    for key, width in zip(rows, widths, strict=True):
        read[key] = dict(zip(names[start : start + width], values[start : start + width], strict=True))
        start += width
    return read


def ids_listed(ids: list[int]) -> RawSQL:
    """``ids`` as a subquery for ``field__in=``: one array parameter (``unnest``), however many ids, and a row count
    the planner reads off the array. A subquery of a table whose statistics lag (a list filled and emptied between
    two ANALYZEs, as ``RoutingRecheck``) was planned for the rows it once held: hash joins of whole tables."""
    return RawSQL("SELECT unnest(%s::bigint[])", (ids,))  # noqa: S611  (a fixed statement, the ids a parameter)
