"""Does sending the embedding-neighbour statement before the PDQ search (``candidates_retrieve``) beat running
the two stages one after the other? Interleaved on the libraries a ``repro_retrieval.py --keep`` run left.

``serial``: the query video's hashes, the PDQ look-up (catch-up, in-memory search, confirmation), then
``video_neighbours`` (the same one statement, waited for at once). ``overlap``: ``candidates_retrieve`` itself,
whose statement runs in PostgreSQL while this process searches its PDQ copy. Same queries, alternating order per
round. On an idle 2-core machine the overlap should save about the in-memory search's time (the process and its
backend on different cores); under load from other processes there is no idle core and the two tie.

    .venv/bin/python bench/repro_overlap.py [--rounds 5] [--shared-buffers 2GB]

The last line is one JSON object: ``ratio`` = p50 overlap / p50 serial at 200k (below 1: the overlap pays).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import django_setup
from repro_retrieval import _load, _pct, _shared_buffers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default="bench_repro_retrieval")
    parser.add_argument("--shared-buffers", help="restart the embedded PostgreSQL with this shared_buffers first")
    args = parser.parse_args()
    django_setup()
    if args.shared_buffers:
        _shared_buffers(args.shared_buffers)
    try:
        _run(args)
    finally:
        if args.shared_buffers:
            _shared_buffers(None)


def _run(args: argparse.Namespace) -> None:
    from django.db import connection

    from moderation.reproduction import selectors
    from moderation.reproduction.services import FRAME_K, FRAME_QUERIES, TOP_K, candidates_retrieve

    def serial(video_id: int) -> None:
        queries = selectors.hash_queries_of(video_id)
        selectors.hash_hits(queries=queries, exclude_video_id=video_id)
        selectors.video_neighbours(video_id=video_id, frame_queries=FRAME_QUERIES, k_frames=FRAME_K, k_text=TOP_K)

    def overlap(video_id: int) -> None:
        candidates_retrieve(video_id=video_id)

    report: dict[str, dict[str, float]] = {}
    load_start = _load()
    for database in (f"{args.database}_small", args.database):
        connection.close()
        connection.settings_dict["NAME"] = database
        with connection.cursor() as cur:
            cur.execute("SELECT prepared FROM bench_meta")
            prepared = cur.fetchone()[0]
            prepared = prepared if isinstance(prepared, dict) else json.loads(prepared)
        queries = [q for q, _source in prepared["queries"]]
        variants = {"serial": serial, "overlap": overlap}
        for _ in range(2):  # warm: the PDQ copy, the HNSW pages
            for qid in queries:
                serial(qid)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for qid in queries:
                for name in variants if r % 2 == 0 else list(variants)[::-1]:
                    t0 = time.perf_counter()
                    variants[name](qid)
                    times[name].append((time.perf_counter() - t0) * 1000)
        size = "large" if database == args.database else "small"
        for name, values in times.items():
            report[f"{size}_{name}"] = {"p50_ms": round(statistics.median(values), 2),
                                        "p99_ms": round(_pct(values, 0.99), 2)}  # fmt: skip
    print(json.dumps({
        "ratio": round(report["large_overlap"]["p50_ms"] / report["large_serial"]["p50_ms"], 3),
        "ratio_basis": "p50 of candidates_retrieve (stages overlapped) / the same stages one after the other, 200k",
        **report, "loadavg": {"start": load_start, "end": _load()},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
