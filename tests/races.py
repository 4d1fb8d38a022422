"""Two writers on the same thing, in a fixed order, on the real Postgres (``transaction=True`` tests only).

``race(first, second)`` runs ``first`` in a thread inside a transaction it leaves open, then ``second`` in
another thread (its own connection), waits until ``second`` waits on a lock ``first``'s transaction holds (or
ends without waiting), and only then commits ``first``. That is the interleaving two people produce when they
press their buttons a few milliseconds apart, made certain rather than likely: both have read before either
has written. The outcome of each is returned (its result, or the exception it raised)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction


@dataclass
class Raced:
    first: Any
    second: Any
    second_waited: bool  # whether ``second`` waited on ``first``'s locks before ``first`` committed


def _waits_on(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid)))", [pid])
        return bool(cursor.fetchone()[0])


# How long ``second`` may take to reach ``first``'s lock: it ends the wait only when ``second`` neither waits nor ends
# (a passing race stops waiting the moment ``second`` blocks or finishes). 10 s was too short for a stage-1 training
# to reach its activation while the other pytest-xdist worker and other processes loaded both cores (load ~25).
RACE_WAIT_S = 60.0


def race(first: Callable[[], Any], second: Callable[[], Any], *, wait_s: float = RACE_WAIT_S) -> Raced:
    outcome: dict[str, Any] = {}
    first_pid: list[int] = []
    first_done, commit = threading.Event(), threading.Event()

    def run_first() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    first_pid.append(cursor.fetchone()[0])
                outcome["first"] = first()
                first_done.set()
                commit.wait(60)
        except BaseException as exc:  # returned to the test
            outcome["first"] = exc
        finally:
            first_done.set()
            connection.close()

    def run_second() -> None:
        try:
            outcome["second"] = second()
        except BaseException as exc:  # returned to the test
            outcome["second"] = exc
        finally:
            connection.close()

    one = threading.Thread(target=run_first)
    one.start()
    assert first_done.wait(60), "the first writer did not finish its work"
    two = threading.Thread(target=run_second)
    two.start()
    waited = False
    deadline = time.monotonic() + wait_s
    while two.is_alive() and time.monotonic() < deadline:
        if first_pid and _waits_on(first_pid[0]):
            waited = True
            break
        time.sleep(0.01)
    commit.set()
    one.join(60)
    two.join(60)
    assert not one.is_alive() and not two.is_alive(), "a writer hung"
    return Raced(first=outcome.get("first"), second=outcome.get("second"), second_waited=waited)
