"""Rows built once for every test of a module, rather than once per test, where the tests only read them.

``rows_for_the_module`` builds them inside a transaction of its own that stays open while the module's tests run and
is rolled back after the last: each test's own transaction (pytest-django's ``django_db``, a ``TestCase`` atomic) is
then a savepoint inside it, so whatever a test writes is still undone when it ends, and the module's rows are gone
before the next module. Only for non-transactional ``django_db`` tests: a transactional test (``transaction=True``,
``live_server``, a real worker) commits and flushes, which this outer transaction cannot hold. Under pytest-xdist a
worker builds the rows for its share of the module's tests (pytest-django keeps a module's database tests together).

The tests ask for the rows through a function-scoped fixture that requests the module-scoped one (so pytest opens the
module's transaction before the test's own) and hands them over with ``refuse_transactional``, which fails a
transactional test with the reason instead of letting it commit into (or flush) the module's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@contextmanager
def rows_for_the_module(django_db_blocker: Any, build: Callable[[], T]) -> Iterator[T]:
    """What ``build`` returns, its rows written in a transaction rolled back on leaving (use it in a module-scoped
    fixture that also requests ``django_db_setup``)."""
    from django.db import transaction

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        # Marked as TestCase marks its own: a ``durable`` atomic block inside a test still runs, as it does in a test.
        outer._from_testcase = True  # type: ignore[attr-defined]
        outer.__enter__()
        try:
            built = build()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    try:
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def refuse_transactional(request: pytest.FixtureRequest, rows: T) -> T:
    """``rows`` (a module-scoped fixture's, built with ``rows_for_the_module``) for this test, or a failure saying why
    not when the test is transactional: its commits and its flush would go into the module's open transaction."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and bool(
        marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")
    )
    if transactional or {"transactional_db", "live_server", "django_db_reset_sequences"} & set(request.fixturenames):
        pytest.fail(
            f"{request.node.nodeid} is transactional: module-wide rows live in one rolled-back transaction; "
            "build them in the test instead"
        )
    return rows
