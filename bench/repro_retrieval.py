"""Candidate-retrieval latency at 1k and at 100k indexed videos, in one run, on a throwaway test database.

Each indexed video gets ``--hashes`` per-second PDQ hashes in the multi-index-hashing table (a B-tree per 16-bit chunk),
``--frames`` frame embeddings (512-d, HNSW) and a transcript embedding (384-d, HNSW); all synthetic
(uniform random bits, Gaussian vectors). ``--queries`` query videos are near-copies of indexed ones
(hashes 10-20 bits off, embeddings with noise). The timed call is the whole read path of retrieval,
``candidates_retrieve``: one SQL for the PDQ look-up (each chunk's own value; the exact
one-bit-flip look-up is timed separately as ``hash_exact``), one HNSW query per query keyframe, one for the
transcript. Bulk loads use COPY (binary for vectors); HNSW and chunk indexes are rebuilt after each load.

    .venv/bin/python bench/repro_retrieval.py [--small 1000] [--large 100000] [--queries 40]

The last line printed is one JSON object; ``ratio`` is p50 at large / p50 at small (``ratio_p99`` too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import django_setup

INDEXES = {
    "keyframe_embedding_hnsw": "CREATE INDEX keyframe_embedding_hnsw ON moderation_keyframe USING hnsw (embedding vector_cosine_ops) WITH (m=16, ef_construction=64)",
    "video_text_embedding_hnsw": "CREATE INDEX video_text_embedding_hnsw ON moderation_video USING hnsw (text_embedding vector_cosine_ops) WITH (m=16, ef_construction=64)",
    **{
        f"repro_framehash_c{i}": f"CREATE INDEX repro_framehash_c{i} ON moderation_framehash (c{i}) WHERE c{i} IS NOT NULL"
        for i in range(16)
    },
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _bits_rows(chunks):  # type: ignore[no-untyped-def]
    import numpy as np

    bits = np.unpackbits(chunks.astype(">u2").view(np.uint8), axis=1) + ord("0")
    return [row.tobytes().decode() for row in bits.astype(np.uint8)]


def _load(n_videos: int, args: argparse.Namespace, rng, sources: dict) -> list[int]:  # type: ignore[no-untyped-def]
    """Add ``n_videos`` indexed videos (and their hashes and embeddings); returns their ids."""
    import numpy as np
    from django.db import connection
    from pgvector.psycopg import register_vector

    from moderation.media.models import Video

    videos = Video.objects.bulk_create(
        [Video(title=f"bench {i}", status=Video.Status.READY, duration=30.0) for i in range(n_videos)], batch_size=5000
    )
    ids = np.array([v.pk for v in videos], dtype=np.int64)
    raw = connection.connection
    register_vector(raw)
    chunks = rng.integers(0, 1 << 16, size=(n_videos * args.hashes, 16), dtype=np.uint32)
    text = rng.standard_normal((n_videos, 384)).astype(np.float32)
    frames = rng.standard_normal((n_videos * args.frames, 512)).astype(np.float32)
    sources.update({"ids": np.concatenate([sources.get("ids", np.empty(0, np.int64)), ids])})
    sources.setdefault("chunks", []).append((ids, chunks))
    sources.setdefault("text", []).append((ids, text))
    sources.setdefault("frames", []).append((ids, frames))
    bits = _bits_rows(chunks)
    with raw.cursor() as cur:
        columns = ", ".join(f"c{i}" for i in range(16))
        with cur.copy(f"COPY moderation_framehash (video_id, t, quality, hash, {columns}) FROM STDIN") as copy:
            for i in range(len(bits)):
                copy.write_row((int(ids[i // args.hashes]), float(i % args.hashes), 100, bits[i], *chunks[i].tolist()))
        with cur.copy(
            "COPY moderation_keyframe (video_id, index, timestamp, image, score, selected, width, height, ocr_done,"
            " ocr_text, pdq_hash, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "float8", "varchar", "float8", "bool", "int4", "int4", "bool", "text",
                            "varchar", "vector"])  # fmt: skip
            for i in range(len(frames)):
                copy.write_row((int(ids[i // args.frames]), i % args.frames, float(i % args.frames), "", 0.0, True, 0, 0,
                                False, "", "", frames[i]))  # fmt: skip
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS bench_text (id int8, v vector(384))")
        cur.execute("TRUNCATE bench_text")
        with cur.copy("COPY bench_text (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for i in range(n_videos):
                copy.write_row((int(ids[i]), text[i]))
        cur.execute("UPDATE moderation_video v SET text_embedding = b.v FROM bench_text b WHERE b.id = v.id")
    raw.commit() if not raw.autocommit else None
    return ids.tolist()


def _add_queries(args: argparse.Namespace, rng, sources: dict) -> list[int]:  # type: ignore[no-untyped-def]
    """Query videos: near-copies of randomly chosen indexed videos (inserted like any video)."""
    import numpy as np

    from moderation.media.models import Keyframe, Video
    from moderation.reproduction import matching
    from moderation.reproduction.models import FrameHash

    all_ids, chunks = sources["chunks"][0]
    _ids, text = sources["text"][0]
    _ids, frames = sources["frames"][0]
    picks = rng.choice(len(all_ids), size=args.queries, replace=False)
    out = []
    for p in picks:
        noise_text = text[p] + 0.1 * rng.standard_normal(384).astype(np.float32)
        video = Video.objects.create(
            title="query", status=Video.Status.READY, duration=30.0, text_embedding=noise_text.tolist()
        )
        rows = chunks[p * args.hashes : (p + 1) * args.hashes]
        hashes = []
        for _t, row in enumerate(rows):
            value = 0
            for c in row:
                value = (value << 16) | int(c)
            for b in rng.choice(256, size=int(rng.integers(10, 21)), replace=False):
                value ^= 1 << int(b)
            hashes.append(f"{value:064x}")
        FrameHash.objects.bulk_create(
            FrameHash(video=video, t=float(t), quality=100, hash=matching.hex_to_bits(h), **matching.chunk_columns(h))
            for t, h in enumerate(hashes)
        )
        Keyframe.objects.bulk_create(
            Keyframe(video=video, index=i, timestamp=float(i), image="", selected=True,
                     embedding=(frames[p * args.frames + i] + 0.1 * rng.standard_normal(512)).tolist())
            for i in range(args.frames)
        )  # fmt: skip
        out.append((video.pk, int(all_ids[p])))
    return out  # type: ignore[return-value]


def _drop_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for name in INDEXES:
            cur.execute(f"DROP INDEX IF EXISTS {name}")


def _reindex() -> dict[str, float]:
    """Rebuild every index; seconds spent on the PDQ chunk B-trees, on the HNSW indexes and in all."""
    from django.db import connection

    spent = {"pdq": 0.0, "hnsw": 0.0}
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        for name, sql in INDEXES.items():
            t0 = time.perf_counter()
            cur.execute(f"DROP INDEX IF EXISTS {name}")
            cur.execute(sql)
            spent["hnsw" if "hnsw" in name else "pdq"] += time.perf_counter() - t0
        cur.execute("ANALYZE moderation_framehash; ANALYZE moderation_keyframe; ANALYZE moderation_video")
    return {**spent, "all": time.perf_counter() - started}


def _index_bytes() -> dict[str, int]:
    """On-disk sizes: the 16 chunk B-trees (the PDQ index), the hash table itself, the two HNSW indexes."""
    from django.db import connection

    with connection.cursor() as cur:
        sizes = {}
        for name in INDEXES:
            cur.execute("SELECT pg_relation_size(%s::regclass)", [name])
            sizes[name] = int(cur.fetchone()[0])
        cur.execute("SELECT pg_relation_size('moderation_framehash'::regclass)")
        table = int(cur.fetchone()[0])
    return {
        "pdq_index_bytes": sum(v for k, v in sizes.items() if "hnsw" not in k),
        "pdq_table_bytes": table,
        "hnsw_bytes": sum(v for k, v in sizes.items() if "hnsw" in k),
    }


def _shrink_to(keep: list[int]) -> None:
    """Delete every video (and its hashes and keyframes) but ``keep``: the bench's rows have no other relations."""
    from django.db import connection

    _drop_indexes()
    with connection.cursor() as cur:
        for table, column in (("moderation_framehash", "video_id"), ("moderation_keyframe", "video_id"),
                              ("moderation_video", "id")):  # fmt: skip
            cur.execute(f"DELETE FROM {table} WHERE NOT ({column} = ANY(%s))", [keep])
        cur.execute("VACUUM FULL moderation_framehash")
        cur.execute("VACUUM FULL moderation_keyframe")
        cur.execute("VACUUM FULL moderation_video")


def _measure(queries: list[tuple[int, int]], rounds: int) -> dict:  # type: ignore[type-arg]
    from moderation.reproduction.selectors import hash_hits
    from moderation.reproduction.services import candidates_retrieve

    total, hash_only, hash_exact, found = [], [], [], 0
    for _ in range(rounds):
        for qid, source in queries:
            t0 = time.perf_counter()
            result = candidates_retrieve(video_id=qid)
            total.append((time.perf_counter() - t0) * 1000)
            found += int(source in result)
    from moderation.reproduction import features
    from moderation.reproduction.models import FrameHash

    for qid, _source in queries:
        qs = [(r.t, features._bits_hex(r.hash), False) for r in FrameHash.objects.filter(video_id=qid)]
        t0 = time.perf_counter()
        hash_hits(queries=qs, exclude_video_id=qid, exact=False)
        hash_only.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        hash_hits(queries=qs, exclude_video_id=qid, exact=True)
        hash_exact.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(statistics.median(total), 2), "p99_ms": round(_pct(total, 0.99), 2),
        "hash_p50_ms": round(statistics.median(hash_only), 2), "hash_p99_ms": round(_pct(hash_only, 0.99), 2),
        "hash_exact_p50_ms": round(statistics.median(hash_exact), 2),
        "hash_exact_p99_ms": round(_pct(hash_exact, 0.99), 2),
        "recall_source_in_candidates": round(found / len(total), 4), "n_queries": len(total),
    }  # fmt: skip


def _index_and_measure(videos: int, load_s: float, queries: list[tuple[int, int]], rounds: int) -> dict:  # type: ignore[type-arg]
    """Rebuild the indexes over ``videos`` loaded videos, time the queries, print the figures and return them."""
    index_s = _reindex()
    figures = {
        "videos": videos,
        "load_s": round(load_s, 1),
        "index_s": round(index_s["all"], 1),
        "index_pdq_s": round(index_s["pdq"], 1),
        **_index_bytes(),
        **_measure(queries, rounds),
    }
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hashes", type=int, default=8, help="per-second PDQ hashes per indexed video")
    parser.add_argument("--frames", type=int, default=1, help="frame embeddings per indexed video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    django_setup()
    import numpy as np
    from django.test.utils import setup_databases, teardown_databases

    rng = np.random.default_rng(args.seed)
    config = setup_databases(verbosity=0, interactive=False)
    try:
        _drop_indexes()
        sources: dict = {}  # type: ignore[type-arg]
        results = {}
        t0 = time.perf_counter()
        small_ids = _load(args.small, args, rng, sources)
        queries = _add_queries(args, rng, sources)
        results["small"] = _index_and_measure(args.small, time.perf_counter() - t0, queries, args.rounds)
        t0 = time.perf_counter()
        remaining = args.large - args.small
        _drop_indexes()  # loading into live HNSW/GIN indexes is much slower than rebuilding them
        for start in range(0, remaining, 20_000):
            _load(min(20_000, remaining - start), args, rng, sources)
        results["large"] = _index_and_measure(args.large, time.perf_counter() - t0, queries, args.rounds)
        # Back to the small library and measured again: the two small runs bracket the large one in time,
        # so load from other processes that came or went during the run shows up as their spread.
        _shrink_to(small_ids + [q for q, _source in queries])
        results["small_after"] = {"videos": args.small, "index_s": round(_reindex()["all"], 1),
                                  **_measure(queries, args.rounds)}  # fmt: skip
        print(json.dumps(results["small_after"]), flush=True)
    finally:
        teardown_databases(config, verbosity=0)
    small, large, after = results["small"], results["large"], results["small_after"]
    small_p50 = statistics.median([small["p50_ms"], after["p50_ms"]])
    small_p99 = statistics.median([small["p99_ms"], after["p99_ms"]])
    print(json.dumps({
        "ratio": round(large["p50_ms"] / small_p50, 3),
        "ratio_basis": "p50 of candidates_retrieve at large / mean of p50 at small before and after",
        "ratio_p99": round(large["p99_ms"] / small_p99, 3),
        "ratio_before_after": [round(large["p50_ms"] / small["p50_ms"], 3), round(large["p50_ms"] / after["p50_ms"], 3)],
        "small_after_p50_ms": after["p50_ms"], "small_after_p99_ms": after["p99_ms"],
        "small_after_hash_p50_ms": after["hash_p50_ms"],
        "p99_ms_large": large["p99_ms"],
        "recall_source_in_candidates": min(r["recall_source_in_candidates"] for r in (small, large, after)),
        "index_build_s": large["index_pdq_s"], "index_build_all_s": large["index_s"],
        "index_bytes": large["pdq_index_bytes"], "index_bytes_per_hash": round(large["pdq_index_bytes"] / (args.large * args.hashes), 1),
        "hash_table_bytes": large["pdq_table_bytes"], "hnsw_bytes": large["hnsw_bytes"],
        "small_videos": args.small, "large_videos": args.large, "hashes_per_video": args.hashes,
        "frame_embeddings_per_video": args.frames,
        "small_p50_ms": small["p50_ms"], "small_p99_ms": small["p99_ms"],
        "large_p50_ms": large["p50_ms"], "large_p99_ms": large["p99_ms"],
        "small_hash_p50_ms": small["hash_p50_ms"], "large_hash_p50_ms": large["hash_p50_ms"],
        "large_hash_p99_ms": large["hash_p99_ms"],
        "small_hash_exact_p50_ms": small["hash_exact_p50_ms"], "large_hash_exact_p50_ms": large["hash_exact_p50_ms"],
        "recall_small": small["recall_source_in_candidates"], "recall_large": large["recall_source_in_candidates"],
        "load_large_s": large["load_s"], "index_large_s": large["index_s"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
