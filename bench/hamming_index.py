"""Hamming-space indexes for 256-bit PDQ hashes, side by side in one run: which one stays flat as the library grows.

    .venv/bin/python bench/hamming_index.py [--small 8000] [--large 200000] [--queries 200]

Sizes count hashes (a video has about 8). The library is uniform random 256-bit hashes; each query is a
planted copy of a library hash with 10-31 bits flipped (what re-encoding, crops and overlays do to PDQ,
inside the match radius 31 that Meta's HMA uses). A query "finds its source" when the source is among
the hits within distance 31. Candidates:

* ``pgvector_hnsw``: pgvector 0.8 ``bit(256)`` column, HNSW ``bit_hamming_ops`` (m 16, ef_construction 64),
  ``ORDER BY h <~> q LIMIT 10`` with ``hnsw.ef_search`` 100 and ``hnsw.iterative_scan = relaxed_order``;
  inside PostgreSQL (no new service, backed up and replicated with the data).
* ``faiss_multihash``: ``IndexBinaryMultiHash`` with 16 tables of 16 bits and ``nflip`` 1 (a chunk
  neighbour within distance 1: by pigeonhole, radius 31 over 16 chunks leaves some chunk within 1 bit),
  ``range_search`` radius 32 (faiss keeps distances strictly below it).
* ``faiss_hnsw``: ``IndexBinaryHNSW`` (M 16), k 10.
* ``mih_numpy``: multi-index hashing over 16-bit chunks done by hand: per chunk a sorted array of
  values, probes of the chunk value and its 16 one-bit neighbours, candidates verified with popcount.
* ``mih21_ours``: what the workbench uses (``moderation.reproduction.hamming.MultiIndex``): 12 chunks of
  21 bits, per chunk a direct-address table (compressed sparse rows), probes of every value within 2 bits
  (pigeonhole: radius 31 over 12 chunks), added in batches of 20,000 (the incremental path, merges included).
* ``faiss_multihash21``: ``IndexBinaryMultiHash`` with the same 12 tables of 21 bits, ``nflip`` 2.
* ``pg_mih21``: the same 12 x 21-bit chunks in PostgreSQL: an integer column per chunk under a B-tree,
  one statement per query hash probing the 232 values of each chunk (``= ANY``) and verifying with
  ``bit_count`` (the pure-PostgreSQL option: no per-process memory).

Memory: ``bytes`` is the index's own arrays (ours), the serialized index (FAISS), the relation sizes
(PostgreSQL); ``rss_bytes`` the growth of this process's resident memory while the index was built.

Prints, per index and size: build seconds, bytes, p50/p99 query ms (one hash per query), recall of the
source. The last line is one JSON object; ``ratio`` is p50 at large ÷ at small of the chosen index: the
fastest at the large size among those that find at least 99 % of the planted copies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

RADIUS = 31
CHUNKS = 16


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _library(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def _queries(lib: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sources = rng.choice(len(lib), size=count, replace=False)
    out = lib[sources].copy()
    for row in out:
        flips = rng.choice(256, size=int(rng.integers(10, RADIUS + 1)), replace=False)
        bits = np.unpackbits(row)
        bits[flips] ^= 1
        row[:] = np.packbits(bits)
    return out, sources


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class MihNumpy:
    """Multi-index hashing: 16 sorted chunk tables; probe each chunk's value and its 16 one-bit neighbours."""

    def __init__(self, lib: np.ndarray) -> None:
        self.lib = lib
        chunks = lib.view(">u2")  # (n, 16) big-endian 16-bit chunks
        self.order = [np.argsort(chunks[:, c], kind="stable") for c in range(CHUNKS)]
        self.sorted = [chunks[self.order[c], c] for c in range(CHUNKS)]

    def nbytes(self) -> int:
        return int(self.lib.nbytes + sum(o.nbytes for o in self.order) + sum(s.nbytes for s in self.sorted))

    def search(self, q: np.ndarray) -> np.ndarray:
        qc = q.view(">u2")
        found = []
        for c in range(CHUNKS):
            value = int(qc[c])
            probes = np.array([value] + [value ^ (1 << b) for b in range(16)], dtype=np.uint16)
            lo = np.searchsorted(self.sorted[c], probes, side="left")
            hi = np.searchsorted(self.sorted[c], probes, side="right")
            for a, b in zip(lo, hi, strict=True):
                if b > a:
                    found.append(self.order[c][a:b])
        if not found:
            return np.empty(0, dtype=np.int64)
        cand = np.unique(np.concatenate(found))
        dist = np.unpackbits(np.bitwise_xor(self.lib[cand], q), axis=1).sum(axis=1)
        return cand[dist <= RADIUS]


def _time_queries(search: Any, queries: np.ndarray, sources: np.ndarray) -> dict[str, float]:
    times, hits = [], 0
    for q, src in zip(queries, sources, strict=True):
        started = time.perf_counter()
        ids = search(q)
        times.append((time.perf_counter() - started) * 1000)
        hits += int(src in set(int(i) for i in ids))
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(_pct(times, 0.99), 3),
            "recall": round(hits / len(sources), 4)}  # fmt: skip


def run_faiss(
    lib: np.ndarray, queries: np.ndarray, sources: np.ndarray, *, hnsw: bool = True
) -> dict[str, dict[str, float]]:
    import faiss

    out = {}
    started = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(256, CHUNKS, 16)
    mh.add(lib)
    mh.nflip = 1
    build = time.perf_counter() - started

    def mh_search(q: np.ndarray) -> np.ndarray:
        _lims, _d, ids = mh.range_search(q[None, :], RADIUS + 1)
        return ids

    out["faiss_multihash"] = {"build_s": round(build, 2), "bytes": _faiss_bytes(mh),
                              **_time_queries(mh_search, queries, sources)}  # fmt: skip
    if not hnsw:
        return out
    started = time.perf_counter()
    hnsw = faiss.IndexBinaryHNSW(256, 16)
    hnsw.hnsw.efConstruction = 64
    hnsw.add(lib)
    build = time.perf_counter() - started
    hnsw.hnsw.efSearch = 100

    def hnsw_search(q: np.ndarray) -> np.ndarray:
        dist, ids = hnsw.search(q[None, :], 10)
        return ids[0][dist[0] <= RADIUS]

    out["faiss_hnsw"] = {"build_s": round(build, 2), "bytes": _faiss_bytes(hnsw),
                         **_time_queries(hnsw_search, queries, sources)}  # fmt: skip
    return out


def _faiss_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index_binary(index).nbytes)


def run_pgvector(lib: np.ndarray, queries: np.ndarray, sources: np.ndarray, table: str) -> dict[str, float]:
    from django.db import connection

    def bits(row: np.ndarray) -> str:
        return "".join(str(b) for b in np.unpackbits(row))

    with connection.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE UNLOGGED TABLE {table} (id integer PRIMARY KEY, h bit(256) NOT NULL)")
        with cur.copy(f"COPY {table} (id, h) FROM STDIN") as copy:
            for i, row in enumerate(lib):
                copy.write_row((i, bits(row)))
        started = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (h bit_hamming_ops) WITH (m=16, ef_construction=64)"
        )
        build = time.perf_counter() - started
        cur.execute("SELECT pg_relation_size(%s)", [f"{table}_hnsw"])
        size = int(cur.fetchone()[0])
        cur.execute("SET hnsw.ef_search = 100")
        cur.execute("SET hnsw.iterative_scan = relaxed_order")

        def search(q: np.ndarray) -> list[int]:
            cur.execute(
                f"SELECT id FROM (SELECT id, h <~> %s::bit(256) AS d FROM {table} ORDER BY h <~> %s::bit(256) LIMIT 10) x "
                "WHERE d <= %s",
                [bits(q), bits(q), RADIUS],
            )
            return [r[0] for r in cur.fetchall()]

        timing = _time_queries(search, queries, sources)
        cur.execute(f"DROP TABLE {table}")
    return {"build_s": round(build, 2), "bytes": size, **timing}


def run_ours(lib: np.ndarray, queries: np.ndarray, sources: np.ndarray) -> dict[str, float]:
    from moderation.reproduction.hamming import MultiIndex

    before = _rss()
    started = time.perf_counter()
    index = MultiIndex()
    for start in range(0, len(lib), 20_000):
        ids = np.arange(start, min(len(lib), start + 20_000))
        index.add(lib[start : start + 20_000], ids, ids)
    index.merge()
    build = time.perf_counter() - started

    def search(q: np.ndarray) -> np.ndarray:
        return index.search(q[None, :], RADIUS).ids

    return {"build_s": round(build, 2), "bytes": index.nbytes(), "rss_bytes": _rss() - before,
            **_time_queries(search, queries, sources)}  # fmt: skip


def run_faiss21(lib: np.ndarray, queries: np.ndarray, sources: np.ndarray) -> dict[str, float]:
    import faiss

    before = _rss()
    started = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(256, 12, 21)
    mh.add(lib)
    mh.nflip = 2
    build = time.perf_counter() - started
    rss = _rss() - before

    def search(q: np.ndarray) -> np.ndarray:
        _lims, _d, ids = mh.range_search(q[None, :], RADIUS + 1)
        return ids

    return {"build_s": round(build, 2), "bytes": _faiss_bytes(mh), "rss_bytes": rss,
            **_time_queries(search, queries, sources)}  # fmt: skip


def run_pg_mih21(lib: np.ndarray, queries: np.ndarray, sources: np.ndarray, table: str) -> dict[str, float]:
    from django.db import connection

    from moderation.reproduction.hamming import _flip_masks, as_words, chunk_keys

    words = as_words(lib)
    keys = np.stack([chunk_keys(words, c) for c in range(12)], axis=1)
    bits = np.unpackbits(lib, axis=1) + ord("0")
    masks = _flip_masks(21, RADIUS // 12)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cols = ", ".join(f"k{c} integer NOT NULL" for c in range(12))
        cur.execute(f"CREATE UNLOGGED TABLE {table} (id integer PRIMARY KEY, h bit(256) NOT NULL, {cols})")
        with cur.copy(f"COPY {table} (id, h, {', '.join(f'k{c}' for c in range(12))}) FROM STDIN") as copy:
            for i in range(len(lib)):
                copy.write_row((i, bits[i].astype(np.uint8).tobytes().decode(), *keys[i].tolist()))
        started = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '512MB'")
        for c in range(12):
            cur.execute(f"CREATE INDEX {table}_k{c} ON {table} (k{c})")
        cur.execute(f"ANALYZE {table}")
        build = time.perf_counter() - started
        cur.execute(f"SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}')")
        total, heap = cur.fetchone()
        lookup = " OR ".join(f"k{c} = ANY(%s::int[])" for c in range(12))
        sql = f"SELECT id FROM {table} WHERE ({lookup}) AND bit_count(h # %s::bit(256)) <= %s"

        def search(q: np.ndarray) -> list[int]:
            qk = [chunk_keys(as_words(q[None, :]), c)[0] for c in range(12)]
            probes = [(np.uint32(k) ^ masks).astype(np.int64).tolist() for k in qk]
            qbits = (np.unpackbits(q) + ord("0")).astype(np.uint8).tobytes().decode()
            cur.execute(sql, [*probes, qbits, RADIUS])
            return [r[0] for r in cur.fetchall()]

        timing = _time_queries(search, queries, sources)
        cur.execute(f"DROP TABLE {table}")
    return {"build_s": round(build, 2), "bytes": int(total) - int(heap), **timing}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=8000)
    parser.add_argument("--large", type=int, default=200000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-pg", action="store_true", help="skip both PostgreSQL candidates")
    parser.add_argument("--no-hnsw", action="store_true", help="skip the graph indexes (slow to build at millions)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    results: dict[str, dict[str, dict[str, float]]] = {}
    old = None
    if not args.no_pg:
        from _common import django_setup

        django_setup()
        from django.db import connection
        from django.test.utils import setup_databases

        connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_hamming_index"  # not the tests' database
        old = setup_databases(verbosity=0, interactive=False)
    try:
        for label, n in (("small", args.small), ("large", args.large)):
            lib = _library(n, rng)
            queries, sources = _queries(lib, args.queries, rng)
            row: dict[str, dict[str, float]] = {}
            row["mih21_ours"] = run_ours(lib, queries, sources)
            row["faiss_multihash21"] = run_faiss21(lib, queries, sources)
            started = time.perf_counter()
            mih = MihNumpy(lib)
            row["mih_numpy"] = {"build_s": round(time.perf_counter() - started, 2), "bytes": mih.nbytes(),
                                **_time_queries(mih.search, queries, sources)}  # fmt: skip
            row |= run_faiss(lib, queries, sources, hnsw=not args.no_hnsw)
            if not args.no_pg:
                row["pg_mih21"] = run_pg_mih21(lib, queries, sources, f"bench_mih21_{label}")
            if not args.no_pg and not args.no_hnsw:
                row["pgvector_hnsw"] = run_pgvector(lib, queries, sources, f"bench_hamming_{label}")
            results[label] = row
            for name, r in row.items():
                print(f"{label:5} n={n:>8} {name:16} {r}", flush=True)
    finally:
        if old is not None:
            from django.test.utils import teardown_databases

            teardown_databases(old, verbosity=0)
    summary: dict[str, Any] = {}
    for name in results["small"]:
        s, lg = results["small"][name], results["large"][name]
        summary[name] = {"ratio_p50": round(lg["p50_ms"] / max(s["p50_ms"], 1e-6), 2),
                         "ratio_p99": round(lg["p99_ms"] / max(s["p99_ms"], 1e-6), 2),
                         "p50_ms_large": lg["p50_ms"], "p99_ms_large": lg["p99_ms"], "recall_large": lg["recall"],
                         "build_s_large": lg["build_s"], "bytes_large": lg["bytes"],
                         "rss_bytes_large": lg.get("rss_bytes")}  # fmt: skip
    # The fastest index (p50 at the large size) among those that find >= 99 % of the planted copies.
    exact_enough = [n for n, v in summary.items() if v["recall_large"] >= 0.99] or list(summary)
    chosen = min(exact_enough, key=lambda n: summary[n]["p50_ms_large"])
    print(json.dumps({"ratio": summary[chosen]["ratio_p50"], "chosen": chosen, "small": args.small,
                      "large": args.large, "queries": args.queries, "indexes": summary}))  # fmt: skip


if __name__ == "__main__":
    main()
