"""Where one candidate retrieval spends its time: per phase, per SQL statement (with its plan), per Python function.

Runs against the libraries a ``bench/repro_retrieval.py ... --keep`` run left behind (both databases), so it
takes seconds, not the minutes of building a library. For each library: the queries of that run, warm, each
``candidates_retrieve`` timed with every SQL statement it issues (count, time, rows), then ``EXPLAIN (ANALYZE,
BUFFERS)`` of each distinct statement of one retrieval and a cProfile of all of them (top functions).

    .venv/bin/python bench/repro_retrieval.py --small 1000 --large 200000 --keep   # once: builds, keeps
    .venv/bin/python bench/repro_profile.py [--repeat 3] [--plans]

The last line is one JSON object: per library the p50 of the whole retrieval, of its SQL statements and of
what is left (Python: the in-memory PDQ search, decoding, ranking), and statements per retrieval.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.repro_profile``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def _shape(sql: str) -> str:
    """A statement with its literals and IN lists folded, to group the same query with other parameters."""
    sql = re.sub(r"IN \([^)]*\)", "IN (...)", sql)
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r"\b\d+\b", "N", sql)
    return " ".join(sql.split())[:200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of each statement")
    parser.add_argument("--top", type=int, default=25, help="cProfile functions to print")
    parser.add_argument("--shared-buffers", help="as bench/repro_retrieval.py's (e.g. 2GB; reset afterwards)")
    parser.add_argument(
        "--libraries", default="small,large", help="which kept libraries to profile: small, large or both (default)"
    )
    args = parser.parse_args()

    django_setup()
    from repro_retrieval import shared_buffers

    with shared_buffers(args.shared_buffers):
        _profile(args)


def _profile(args: argparse.Namespace) -> None:
    from django.db import connection, connections

    from moderation.reproduction import hamming, pdq_index, selectors
    from moderation.reproduction.services import FRAME_K, FRAME_QUERIES, TOP_K, candidates_retrieve

    base = dict(connection.settings_dict)
    wrapper_class = type(connections["default"])
    report: dict[str, Any] = {}
    statements: list[tuple[str, Any, float, int]] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = execute(sql, params, many, context)
        statements.append((sql, params, time.perf_counter() - t0, getattr(context["cursor"], "rowcount", -1)))
        return result

    libraries = (("small", "bench_repro_retrieval_200000_small"), ("large", "bench_repro_retrieval_200000"))
    for name, db in (library for library in libraries if library[0] in args.libraries.split(",")):
        connections["default"] = wrapper_class({**base, "NAME": db}, alias="default")
        with connection.cursor() as cur:
            cur.execute("SELECT prepared FROM bench_meta")
            row = cur.fetchone()
        prepared = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        qids = [int(q[0]) for q in prepared["queries"]]
        pdq_index.reload()
        for qid in qids:  # warm
            candidates_retrieve(video_id=qid)

        # What comes back and is ranked in Python, per retrieval: the candidate videos returned, their PDQ hits
        # (confirmed rows), and the chunk-table rows the in-memory search read to find them (before its prefilter).
        returned, hits, read = [], [], []
        for qid in qids:
            found = candidates_retrieve(video_id=qid)
            returned.append(len(found))
            hits.append(sum(len(ev["hash_hits"]) for ev in found.values()))
            queries = selectors.hash_queries_of(qid)
            codes = hamming.hex_codes([h for _t, h, _m in queries])
            index = pdq_index._copy_for_connection().index
            probes, _query_chunk = index._probes(hamming.as_words(codes), 31)
            offsets = index._offsets
            read.append(
                int((offsets[probes + 1].astype("int64") - offsets[probes]).sum()) if offsets is not None else 0
            )
        print(
            f"== {name}: per retrieval p50 {statistics.median(returned)} candidate videos returned,"
            f" {statistics.median(hits)} PDQ hits among them, {statistics.median(read)} chunk-table rows read",
            flush=True,
        )
        totals, sql_totals, counts = [], [], []
        per_shape: dict[str, list[float]] = defaultdict(list)
        profiler = cProfile.Profile()
        for _ in range(args.repeat):
            for qid in qids:
                statements.clear()
                with connection.execute_wrapper(record):
                    t0 = time.perf_counter()
                    profiler.enable()
                    candidates_retrieve(video_id=qid)
                    profiler.disable()
                    totals.append((time.perf_counter() - t0) * 1000)
                sql_totals.append(sum(s[2] for s in statements) * 1000)
                counts.append(len(statements))
                for sql, _p, dt, _n in statements:
                    per_shape[_shape(sql)].append(dt * 1000)
        n = len(totals)
        print(f"== {name} ({db}): {n} retrievals, p50 {statistics.median(totals):.2f} ms", flush=True)
        for shape, times in sorted(per_shape.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {len(times) / n:5.1f}/retrieval  p50 {statistics.median(times):7.3f} ms  {shape}")
        # the COPY of the catch-up does not pass through Django's cursor wrapper: it is in cProfile below
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.top)
        print("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[:6000])
        if args.plans:
            statements.clear()
            with connection.execute_wrapper(record):
                candidates_retrieve(video_id=qids[0])
            seen = set()
            for sql, params, _dt, _n in list(statements):
                if not sql.lstrip().upper().startswith("SELECT") or _shape(sql) in seen or ";" in sql:
                    continue  # the neighbours statement (settings; statement) is explained on its own below
                seen.add(_shape(sql))
                with connection.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    from django.conf import settings

                    cur.execute(f"SET LOCAL hnsw.ef_search = {int(settings.REPRO_HNSW_EF_SEARCH)}")
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    plan = "\n    ".join(r[0] for r in cur.fetchall())
                    cur.execute("COMMIT")
                print(f"-- {_shape(sql)}\n    {plan}")
        if args.plans:
            sql = selectors.video_neighbours_sql(
                video_id=qids[0], frame_queries=FRAME_QUERIES, k_frames=FRAME_K, k_text=TOP_K
            )
            settings_sql, statement = sql.split(";", 1)
            with connection.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute(settings_sql)
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
                plan = "\n    ".join(r[0] for r in cur.fetchall())
                cur.execute("COMMIT")
            print(f"-- the neighbours statement\n    {plan}")
        report[name] = {
            "p50_ms": round(statistics.median(totals), 2),
            "p99_ms": round(sorted(totals)[min(n - 1, int(0.99 * (n - 1) + 0.5))], 2),
            "sql_p50_ms": round(statistics.median(sql_totals), 2),
            "python_p50_ms": round(statistics.median([t - s for t, s in zip(totals, sql_totals, strict=True)]), 2),
            "statements": round(statistics.median(counts), 1),
            "candidates_returned_p50": statistics.median(returned),
            "pdq_hits_p50": statistics.median(hits),
            "pdq_rows_read_p50": statistics.median(read),
        }
        connection.close()
    if {"small", "large"} <= set(report):
        report["ratio"] = round(report["large"]["p50_ms"] / report["small"]["p50_ms"], 3)
    print(json.dumps({"ratio": report.pop("ratio", None), **report}))


if __name__ == "__main__":
    main()
