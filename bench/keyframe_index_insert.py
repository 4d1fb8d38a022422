"""What the per-keyframe HNSW index cost each video's keyframe insert (the index migration 0029 dropped).

On the 200k library a ``bench/repro_retrieval.py --large 200000 --keep`` run left behind: two scratch copies of the
first ``--rows`` keyframe rows (video id, 512-d embedding), one with the HNSW index the schema used to build
(``vector_cosine_ops``, m 16, ef_construction 64), one without; then a video's 8 keyframe rows (random unit
vectors) inserted ``--videos`` times into each, alternating which goes first, each insert its own transaction.
Both copies are dropped afterwards. The last line is one JSON object (p50 / p99 ms per video, and the ratio).

    .venv/bin/python bench/keyframe_index_insert.py [--rows 200000] [--videos 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.keyframe_index_insert``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--database", default="bench_repro_retrieval_200000")
    args = parser.parse_args()
    django_setup()
    import numpy as np
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    params = connection.get_connection_params()
    conn = psycopg.connect(**{**params, "dbname": args.database}, autocommit=True)
    register_vector(conn)
    rng = np.random.default_rng(0)
    loads = {"start": [round(x, 2) for x in os.getloadavg()]}
    try:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            for name in ("bench_kf_hnsw", "bench_kf_plain"):
                cur.execute(f"DROP TABLE IF EXISTS {name}")
                cur.execute(
                    f"CREATE TABLE {name} AS SELECT video_id, embedding FROM moderation_keyframe"
                    f" WHERE embedding IS NOT NULL ORDER BY id LIMIT {int(args.rows)}"
                )
            t0 = time.perf_counter()
            cur.execute(
                "CREATE INDEX bench_kf_hnsw_idx ON bench_kf_hnsw USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = 16, ef_construction = 64)"
            )
            build_s = time.perf_counter() - t0
        times: dict[str, list[float]] = {"bench_kf_hnsw": [], "bench_kf_plain": []}
        for i in range(args.videos):
            vectors = rng.standard_normal((8, 512)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = [(10_000_000 + i, v) for v in vectors]
            for name in ("bench_kf_hnsw", "bench_kf_plain") if i % 2 == 0 else ("bench_kf_plain", "bench_kf_hnsw"):
                with conn.cursor() as cur:
                    t0 = time.perf_counter()
                    cur.executemany(f"INSERT INTO {name} (video_id, embedding) VALUES (%s, %s)", rows)
                    times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_kf_hnsw")
            cur.execute("DROP TABLE IF EXISTS bench_kf_plain")
        conn.close()
    loads["end"] = [round(x, 2) for x in os.getloadavg()]

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)

    with_index, without = times["bench_kf_hnsw"], times["bench_kf_plain"]
    print(json.dumps({
        "ratio": round(statistics.median(with_index) / statistics.median(without), 2),
        "with_index_p50_ms": round(statistics.median(with_index), 2), "with_index_p99_ms": p(with_index, 0.99),
        "without_p50_ms": round(statistics.median(without), 2), "without_p99_ms": p(without, 0.99),
        "rows": args.rows, "videos": args.videos, "index_build_s": round(build_s, 1), "loadavg": loads,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
