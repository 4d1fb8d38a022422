"""``workbench.db.session_lock_try``: the one session advisory try-lock (a video's processing, an impact preview's run).
A second holder, on another connection, is told it is taken; the lock is released on leaving, and not released by a
caller that did not get it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from workbench.db import session_lock_try


def _try_elsewhere(name: str) -> bool:
    """Whether another database connection (a thread's own) gets ``name`` now; released again at once."""
    result: list[bool] = []

    def attempt() -> None:
        try:
            with session_lock_try(name) as got:
                result.append(got)
        finally:
            connection.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(10)
    return result[0]


@pytest.mark.django_db(transaction=True)
def test_a_held_lock_is_refused_elsewhere_and_free_after_leaving() -> None:
    with session_lock_try("test-lock:a") as got:
        assert got
        assert not _try_elsewhere("test-lock:a")
        assert _try_elsewhere("test-lock:b")  # another name is another lock
    assert _try_elsewhere("test-lock:a")


@pytest.mark.django_db(transaction=True)
def test_a_caller_that_did_not_get_it_leaves_the_holders_lock_alone() -> None:
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with session_lock_try("test-lock:c") as got:
                assert got
                held.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        with session_lock_try("test-lock:c") as got:
            assert not got
        assert not _try_elsewhere("test-lock:c")  # still the holder's
    finally:
        release.set()
        thread.join(10)
    assert done.is_set() and _try_elsewhere("test-lock:c")
