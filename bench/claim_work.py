"""Where a contended claim's work goes, counted rather than timed (wall times on a shared 2-core box are noise).

On one queue of ``--size`` pending items (100k by default), 16 claimer processes each claim and submit ``--claims``
times, as ``bench/queue_claim.py`` does, and this reports per claim:

- ``statements``: what one claim, one submit and the review screen's submit-and-next (claim next + claim ahead)
  send (``CaptureQueriesContext``);
- ``scan``: index entries read and heap rows fetched in ``moderation_reviewtask`` and buffer pages touched by the
  claim statement, read from the transaction's own statistics (``pg_stat_get_xact_*``) right after it, for
  every contended claim (median, p99, max) and for one claimer alone;
- ``wal``: WAL bytes a claim and a submit write (one claimer alone, ``pg_current_wal_insert_lsn`` around each), and
  the WAL flushes (``fsyncs``) the client backends did during the contended run, per claim-and-submit;
- ``waits``: what the claim statements were doing when sampled (``pg_stat_activity`` every ~2 ms from another
  connection): on a CPU or runnable (no wait event), waiting for a WAL flush at commit (``IO:WalSync``,
  ``LWLock:WALWrite``), for a row or transaction lock (``Lock:*``), or another wait;
- ``explain``: the claim's plan, run (``EXPLAIN (ANALYZE, BUFFERS)`` then rolled back) with nobody else claiming and
  with 15 items at the head of the queue locked by other transactions (15 claimers mid-claim), per leg the index
  entries walked.

Each claim is read inside ``transaction.atomic`` so the counters can be read before its commit: one commit per claim,
as in autocommit. The same settings as the other benches (a throwaway test database on the embedded server).

    .venv/bin/python bench/claim_work.py [--size 100000] [--claims 40]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402
from queue_claim import claim_statement  # noqa: E402

CLAIMERS = 16

# The claim statement's own tables: what it reads per candidate item.
_SCAN_SQL = """
SELECT
  coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0),
  pg_stat_get_xact_tuples_fetched('moderation_reviewtask'::regclass),
  (SELECT coalesce(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0) FROM pg_class c
   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i'))
FROM pg_index i WHERE i.indrelid = 'moderation_reviewtask'::regclass
"""

_SAMPLE_SQL = """
SELECT wait_event_type, wait_event,
       CASE WHEN query LIKE '%%WITH allowed AS%%' THEN 'claim' WHEN query = 'COMMIT' THEN 'commit' ELSE 'other' END
FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered), "p99": p99, "max": ordered[-1], "n": len(ordered)}


def _claim_counted(user, queue) -> tuple[Any, tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    """One claim, and what its statement read: (index entries, heap rows fetched, buffer pages). The backend's
    per-transaction counters also hold its earlier transactions not yet reported (reported at most once a second),
    so they are read before and after the claim, in its transaction."""
    from django.db import connection, transaction

    from moderation.review.services import review_claim_next

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SCAN_SQL)
        before = cursor.fetchone()
        task = review_claim_next(user=user, queue=queue)
        cursor.execute(_SCAN_SQL)
        after = cursor.fetchone()
    return task, tuple(int(a) - int(b) for a, b in zip(after, before, strict=True))  # type: ignore[return-value]


def _claimer(queue_id: int, user_id: int, claims: int, barrier, out) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.db import connection

    from moderation.review import services
    from moderation.review.models import ReviewQueue
    from moderation.review.services import review_release, review_submit

    if hasattr(services, "_claim_commits_alone"):
        # The claim is read in a transaction of its own (``_claim_counted``): the statement and the counters, then
        # COMMIT. Commit it as the claim's own transaction commits in autocommit.
        setattr(services, "_claim_commits_alone", lambda: True)  # noqa: B010
    user, queue = User.objects.get(pk=user_id), ReviewQueue.objects.get(pk=queue_id)
    task, _ = _claim_counted(user, queue)  # warm: the prepared statement, the catalog
    if task is not None:
        review_release(task=task, user=user)
    barrier.wait(120)
    rows, got = [], []
    for _ in range(claims):
        task, counted = _claim_counted(user, queue)
        rows.append(counted)
        if task is None:
            break
        got.append(task.pk)
        review_submit(task=task, user=user, verdict="approve")
    connection.close()
    out.put((rows, got))


def _sampler(stop, out) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    seen: Counter[str] = Counter()
    samples = 0
    with connection.cursor() as cursor:
        while not stop.is_set():
            cursor.execute(_SAMPLE_SQL)
            for kind, event, what in cursor.fetchall():
                seen[f"{what} {kind}:{event}" if kind else f"{what} cpu_or_runnable"] += 1
            samples += 1
            time.sleep(0.002)
    connection.close()
    out.put((samples, dict(seen)))


def _wal_io(cursor) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT pg_stat_force_next_flush()")
    cursor.execute(
        "SELECT coalesce(sum(writes), 0), coalesce(sum(fsyncs), 0) FROM pg_stat_io"
        " WHERE object = 'wal' AND backend_type = 'client backend'"
    )
    writes, fsyncs = cursor.fetchone()
    return int(writes), int(fsyncs)


def _explain(user, queue, locked: int) -> str:  # type: ignore[no-untyped-def]
    """The claim run under ``EXPLAIN (ANALYZE, BUFFERS)`` and rolled back, while another connection holds the first
    ``locked`` pending items in claim order locked (claimers in the middle of their claims)."""
    import psycopg
    from django.db import connection

    holder = None
    if locked:
        holder = psycopg.connect(**connection.get_connection_params())
        holder.execute(
            "SELECT id FROM moderation_reviewtask WHERE queue_id = %s AND status = 'pending'"
            " ORDER BY priority DESC, deadline, id LIMIT %s FOR UPDATE",
            [queue.pk, locked],
        )
    sql, params = claim_statement(queue, user)
    # The claim's own plan: prepared and generic, as ``prepared_cursor`` and ``plan_cache_mode`` make it.
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", positional, sql).replace("%%", "%")
    try:
        with psycopg.connect(**connection.get_connection_params()) as conn:
            conn.execute("SET plan_cache_mode = force_generic_plan")
            conn.execute(f"PREPARE claim AS {prepared}")
            values = ", ".join(["%s"] * len(names))
            run = psycopg.ClientCursor(conn).mogrify(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE claim({values})",
                [params[n] for n in names],
            )
            rows = conn.execute(run).fetchall()
            conn.rollback()
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    # The nodes that ran, each with its rows and loops (and its buffers on the line after).
    lines = [r[0] for r in rows]
    kept = []
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("CTE ") or ("actual rows" in text and "never executed" not in text):
            buffers = lines[i + 1].strip() if i + 1 < len(lines) and "Buffers" in lines[i + 1] else ""
            kept.append(f"{text.removeprefix('->  ')} {buffers}".strip())
    return " | ".join(kept)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=40)
    parser.add_argument("--history", type=int, default=5000, help="items the explained reviewer decided before")
    args = parser.parse_args()

    django_setup()
    import multiprocessing

    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.utils import timezone

        from moderation.review.models import ReviewQueue, ReviewTask
        from moderation.review.services import review_claim_ahead, review_claim_next, review_release, review_submit
        from tests.factories import PolicyVersionFactory, UserFactory
        from tests.moderation.review.seeding import seed_pending_tasks

        policy_version = PolicyVersionFactory()
        users = [UserFactory(role="moderator") for _ in range(CLAIMERS)]
        queue = ReviewQueue.objects.create(name="Bench work", slug="bench-work")
        seed_pending_tasks(n=args.size + (CLAIMERS + 2) * (args.claims + 4), queue=queue, policy_version=policy_version)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
            cursor.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method',"
                " 'commit_delay', 'wal_writer_delay', 'shared_buffers', 'server_version')"
            )
            result: dict[str, Any] = {"settings": dict(cursor.fetchall()), "size": args.size}

        # Statements: a claim, a submit, the screen's submit-and-next pair.
        user = users[0]
        user.has_perm("moderation.review_video")
        with CaptureQueriesContext(connection) as claim_q:
            task = review_claim_next(user=user, queue=queue)
        with CaptureQueriesContext(connection) as submit_q:
            review_submit(task=task, user=user, verdict="approve")
        task = review_claim_next(user=user, queue=queue)
        review_claim_ahead(user=user, task=task)
        review_submit(task=task, user=user, verdict="approve")
        with CaptureQueriesContext(connection) as pair_q:
            nxt = review_claim_next(user=user, queue=queue)
            ahead = review_claim_ahead(user=user, task=nxt)
        for held in (nxt, ahead):
            review_release(task=held, user=user)
        result["statements"] = {"claim": len(claim_q), "submit": len(submit_q), "next_and_ahead": len(pair_q)}

        # One claimer alone: what a claim and a submit read and write.
        alone, wal_claim, wal_submit = [], [], []
        with connection.cursor() as cursor:
            for _ in range(20):
                cursor.execute("SELECT pg_current_wal_insert_lsn()")
                lsn0 = cursor.fetchone()[0]
                task, counted = _claim_counted(user, queue)
                cursor.execute(
                    "SELECT pg_current_wal_insert_lsn(), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [lsn0]
                )
                lsn1, claim_bytes = cursor.fetchone()
                review_submit(task=task, user=user, verdict="approve")
                cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [lsn1])
                wal_claim.append(float(claim_bytes))
                wal_submit.append(float(cursor.fetchone()[0]))
                alone.append(counted)
        result["alone"] = {
            "index_entries": _stats([r[0] for r in alone]),
            "heap_rows": _stats([r[1] for r in alone]),
            "buffers": _stats([r[2] for r in alone]),
            "wal_bytes_claim": _stats(wal_claim),
            "wal_bytes_submit": _stats(wal_submit),
        }

        # The plan with nobody else claiming and with 15 claimers mid-claim.
        result["explain"] = {f"locked_{n}": _explain(users[1], queue, n) for n in (0, 15)}
        # A reviewer with a history: ``--history`` items they decided in another queue of the same kind.
        if args.history:
            done = ReviewQueue.objects.create(name="Bench history", slug="bench-history")
            seed_pending_tasks(n=args.history, queue=done, policy_version=policy_version, title="Decided")
            ReviewTask.objects.filter(queue=done).update(
                status=ReviewTask.Status.DONE,
                claimed_by=users[1],
                claimed_at=timezone.now(),
                completed_at=timezone.now(),
            )
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
            result["explain"][f"history_{args.history}_locked_0"] = _explain(users[1], queue, 0)
            alone_h = []
            for _ in range(10):
                task, counted = _claim_counted(users[1], queue)
                review_submit(task=task, user=users[1], verdict="approve")
                alone_h.append(counted)
            result[f"alone_history_{args.history}"] = {
                "index_entries": _stats([r[0] for r in alone_h]),
                "buffers": _stats([r[2] for r in alone_h]),
            }

        # 16 claimers, each claim counted; the sampler beside them.
        with connection.cursor() as cursor:
            io0 = _wal_io(cursor)
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        barrier, out, samples_out, stop = ctx.Barrier(CLAIMERS), ctx.Queue(), ctx.Queue(), ctx.Event()
        sampler = ctx.Process(target=_sampler, args=(stop, samples_out))
        sampler.start()
        procs = [ctx.Process(target=_claimer, args=(queue.pk, u.pk, args.claims, barrier, out)) for u in users]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=900) for _ in procs]
        stop.set()
        samples, seen = samples_out.get(timeout=60)
        for proc in [*procs, sampler]:
            proc.join(60)
        rows = [r for mine, _ in results for r in mine]
        got = [pk for _, mine in results for pk in mine]
        with connection.cursor() as cursor:
            io1 = _wal_io(cursor)
        claimed = len(got)
        result["contended"] = {
            "claims": len(rows),
            "double_claims": sum(1 for c in Counter(got).values() if c > 1),
            "index_entries": _stats([r[0] for r in rows]),
            "heap_rows": _stats([r[1] for r in rows]),
            "buffers": _stats([r[2] for r in rows]),
            "wal_writes_per_claim_and_submit": round((io1[0] - io0[0]) / max(claimed, 1), 2),
            "wal_fsyncs_per_claim_and_submit": round((io1[1] - io0[1]) / max(claimed, 1), 2),
        }
        total = sum(seen.values()) or 1
        result["waits"] = {
            "samples": samples,
            "active_samples": total,
            **{k: round(v / total, 3) for k, v in sorted(seen.items(), key=lambda kv: -kv[1])},
        }
    finally:
        teardown_databases(old, verbosity=0)
    for name, plan in result.pop("explain").items():
        print(f"plan {name}: {plan}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
