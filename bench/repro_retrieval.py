"""Candidate-retrieval latency with a small and a large library side by side, queries interleaved, one run.

Two throwaway databases (the test database and a copy of its schema) hold a small and a large library at the
same time. Each indexed video has a real video's shape: ``--hashes`` (8) per-second PDQ hashes (``FrameHash`` rows),
``--frames`` (8) keyframe embeddings (512-d), their video embedding (``analyzers.video_embedding``, halfvec, HNSW) and a
transcript embedding (384-d, HNSW); all synthetic (uniform random bits, Gaussian vectors, a video's keyframes a random
walk). The per-keyframe HNSW index is built only with ``--keyframe-index`` (default up to 400k keyframe rows); then
that channel is timed and scored next to the video embedding's, interleaved. The small library is the first ``--small`` videos of the large one, which holds them at random
places among its rows (an HNSW index built after the load makes its first rows its best-connected nodes). ``--queries`` query videos,
inserted in both, are near-copies of videos in the small library: every second 10-31 bits off its source
(anywhere inside PDQ's match radius 31), keyframes through a synthetic transform (``_transformed``: crop, re-encode,
speed ±10 %, mirror, overlay, borders, trim), their video embedding written by ``video_embedding_refresh``; every
other query is a mirrored upload (its own hashes unrelated, its flipped-frame hashes near the source's). The timed
call is the whole read path of retrieval, ``candidates_retrieve``: the PDQ look-up (this process's copy of the index
catching up with PostgreSQL, the exact search, the confirming query) and the neighbours (with the default
``REPRO_FRAME_NEIGHBOURS``: one HNSW scan of the video embeddings, one of the transcripts). ``--arms`` (default
``parallel,serial``) times each retrieval both ways, interleaved (which goes first alternates): the two scans
sent first, each on its own side connection, walking while this process does the PDQ look-up
(``REPRO_NEIGHBOURS_PARALLEL``, the default), and in one statement after it; ``ratio`` and the recall are the first
arm's, ``arms`` has each arm's p50 / p99 and ratio. ``--pdq-baseline COMMIT`` adds the arm ``pdq-baseline``: the
parallel arm with this process's PDQ copy searched by ``hamming.py`` as it was at COMMIT (the same rows), to time a
change of the in-memory search end to end against the code before it.

Queries alternate between the libraries (query i on one, then on the other; which goes first alternates by
round), so load from other processes on the machine falls on both alike. Per round the p50 ratio is computed;
the report gives the median over all queries and the spread of the per-round ratios.

    .venv/bin/python bench/repro_retrieval.py [--small 1000] [--large 20000] [--queries 40] [--rounds 5]

``index_build_s`` is the time one process takes to load its copy of the PDQ index from PostgreSQL at the large
size (what a restarted worker pays on its first search), ``index_bytes`` that copy's memory. The last line
printed is one JSON object; ``ratio`` is p50 at large / p50 at small; ``hash_*`` and ``neighbours_statement_ms`` time
the PDQ look-up and the embedding neighbours alone, per picture channel (run right after, so warmer);
``recall_video_neighbours``, ``recall_keyframe_neighbours`` (with ``--keyframe-index``; ``recall_by_transform_large``
per transform) and ``recall_text_neighbours`` say how often those neighbours alone (above the candidate thresholds)
hold the source.
``--shared-buffers 2GB`` restarts the embedded PostgreSQL with that buffer cache for the run and resets it afterwards
(a production-sized cache; the default 128 MB cannot hold a 200k library's HNSW indexes). ``--keep`` reruns at 200k
take about 1.5-2 minutes (loading the PDQ copy twice, 400 retrievals); building the 200k libraries with 8 keyframes a
video took 21 minutes at load 6-7 (COPY 12 min, the two HNSW indexes 8.5 min). The embedded PostgreSQL runs with its
default 128 MB ``shared_buffers``, which cannot hold a 200k library's HNSW indexes: bench/RESULTS.md reports runs with
that and with 2 GB (``--shared-buffers 2GB``). Before timing, ``--warm`` (400) untimed neighbour look-ups of random
library videos bring the HNSW pages into the buffer cache (after a restart they are outside it, unlike a serving
index). ``--ef-search N`` overrides ``REPRO_HNSW_EF_SEARCH`` for the run. ``cpu_ms_per_retrieval`` is the mean CPU
of this process and of its PostgreSQL backend per retrieval (from /proc): what load from other processes does not
inflate. ``huge_pages`` says whether PostgreSQL's shared memory sits on huge pages (``huge_pages_status``: with the
default ``huge_pages = try`` it does when the host reserves them, e.g. ``sysctl vm.nr_hugepages=1400`` for 2 GB):
that makes every retrieval ~20-25 % cheaper at both sizes (bench/RESULTS.md, issue 20), so compare runs only
under the same setting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.repro_retrieval``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, django_setup, module_at  # noqa: E402

INDEXES = {
    "keyframe_embedding_hnsw": "CREATE INDEX keyframe_embedding_hnsw ON moderation_keyframe USING hnsw (embedding vector_cosine_ops) WITH (m=16, ef_construction=64)",
    # The distinct vectors retrieval scans (migration 0032; the trigger on moderation_video fills them as the load
    # writes the videos' embeddings).
    "transcript_vector_hnsw": "CREATE INDEX transcript_vector_hnsw ON moderation_transcriptvector USING hnsw (embedding vector_cosine_ops) WITH (m=16, ef_construction=64)",
    "picture_vector_hnsw": "CREATE INDEX picture_vector_hnsw ON moderation_picturevector USING hnsw (embedding halfvec_cosine_ops) WITH (m=16, ef_construction=64)",
}
# The arms that set REPRO_HNSW_ITERATIVE_SCAN for their retrievals (else the setting's own value).
ITERATIVE_ARMS = {"iter-relaxed": "relaxed_order", "iter-off": "off"}
# The arms that send the two side scans as plain SQL (parsed and planned per retrieval, as before hrepro22) or as
# statements prepared on the side connections (``side_connection.prepares``; else the setting's own value).
SIDE_ARMS = {"side-simple": False, "side-prepared": True}
# What a planted copy's keyframe embeddings went through (synthetic stand-ins for the transforms of
# ``moderation.reproduction.transforms``; the real transforms on real clips: ``generate_repro_eval``'s channel recall).
TRANSFORMS = ("reencode", "crop", "mirror", "speed", "slow", "overlay", "trim", "borders")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _backend_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a local PostgreSQL backend has used, from /proc (0 where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _huge_pages_status(cur) -> str:  # type: ignore[no-untyped-def]
    """Whether PostgreSQL's shared memory (its buffer cache, the HNSW pages) is on huge pages: "on" / "off"
    (PostgreSQL 17+; "unknown" before). It changes the HNSW walks' cost (bench/RESULTS.md, issue 20)."""
    cur.execute("SELECT setting FROM pg_settings WHERE name = 'huge_pages_status'")
    row = cur.fetchone()
    return str(row[0]) if row else "unknown"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _bits(codes) -> list[str]:  # type: ignore[no-untyped-def]
    import numpy as np

    bits = np.unpackbits(codes, axis=1) + ord("0")
    return [row.tobytes().decode() for row in bits.astype(np.uint8)]


def _library(n: int, args: argparse.Namespace, rng) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Random hashes and Gaussian embeddings; a video's keyframes are a random walk (each 0.8 its predecessor plus
    fresh noise), so consecutive keyframes of one video resemble each other as a shot's do; videos are unrelated."""
    import numpy as np

    frames = rng.standard_normal((n, args.frames, 512)).astype(np.float32)
    for i in range(1, args.frames):
        frames[:, i] = 0.8 * frames[:, i - 1] + 0.6 * frames[:, i]
    return {
        "codes": rng.integers(0, 256, size=(n * args.hashes, 32), dtype=np.uint8),
        "text": rng.standard_normal((n, 384)).astype(np.float32),
        "frames": frames.reshape(n * args.frames, 512),
    }


def _video_vectors(frames):  # type: ignore[no-untyped-def]
    """``analyzers.video_embedding`` of every video (rows of ``frames``: videos × keyframes × 512)."""
    import numpy as np

    from moderation.media.analyzers import video_embedding

    return np.array([video_embedding(f) for f in frames], dtype=np.float32)


def _fill(n_videos: int, lib: dict[str, Any], args: argparse.Namespace, order: Any = None) -> list[int]:
    """Insert the first ``n_videos`` videos of ``lib`` (hashes, keyframes, embeddings) by COPY, in batches, in
    ``order`` (library positions; default 0, 1, ...); their ids by library position."""
    import numpy as np
    from django.db import connection
    from pgvector.psycopg import register_vector

    from moderation.media.models import Video

    order = np.arange(n_videos) if order is None else np.asarray(order)
    h, f = args.hashes, args.frames
    codes = lib["codes"].reshape(-1, h, 32)
    frames = lib["frames"].reshape(-1, f, lib["frames"].shape[1])
    all_ids = np.zeros(n_videos, dtype=np.int64)
    for start in range(0, n_videos, 20_000):
        which = order[start : start + 20_000]
        videos = Video.objects.bulk_create(
            [Video(title=f"bench {i}", status=Video.Status.READY, duration=30.0) for i in which], batch_size=5000
        )
        ids = np.array([v.pk for v in videos], dtype=np.int64)
        all_ids[which] = ids
        raw = connection.connection
        register_vector(raw)
        bits = _bits(codes[which].reshape(-1, 32))
        with raw.cursor() as cur:
            with cur.copy("COPY moderation_framehash (video_id, t, quality, hash) FROM STDIN") as copy:
                for i, b in enumerate(bits):
                    copy.write_row((int(ids[i // h]), float(i % h), 100, b))
            with cur.copy(
                "COPY moderation_keyframe (video_id, index, timestamp, image, score, selected, width, height,"
                " ocr_done, ocr_text, pdq_hash, embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int4", "float8", "varchar", "float8", "bool", "int4", "int4", "bool",
                                "text", "varchar", "vector"])  # fmt: skip
                for i, vec in enumerate(frames[which].reshape(-1, frames.shape[2])):
                    copy.write_row((int(ids[i // f]), i % f, float(i % f), "", 0.0, True, 0, 0, False, "", "", vec))
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS bench_text (id int8, v vector(384), p vector(512))")
            cur.execute("TRUNCATE bench_text")
            pictures = _video_vectors(frames[which])
            with cur.copy("COPY bench_text (id, v, p) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector", "vector"])
                for i, vec in enumerate(lib["text"][which]):
                    copy.write_row((int(ids[i]), vec, pictures[i]))
            cur.execute(
                "UPDATE moderation_video v SET text_embedding = b.v, visual_embedding = b.p::halfvec"
                " FROM bench_text b WHERE b.id = v.id"
            )
        if not raw.autocommit:
            raw.commit()
    return all_ids.tolist()


def _plan_queries(lib: dict[str, Any], args: argparse.Namespace, rng) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Near-copies of videos in the small library (the same plan is inserted in both databases)."""
    import numpy as np

    plans = []
    caption = {k: rng.standard_normal(512).astype(np.float32) for k in ("overlay", "borders")}
    for n, p in enumerate(rng.choice(args.small, size=args.queries, replace=False)):
        near = lib["codes"][p * args.hashes : (p + 1) * args.hashes].copy()
        for row in near:
            bits = np.unpackbits(row)
            bits[rng.choice(256, size=int(rng.integers(10, 32)), replace=False)] ^= 1
            row[:] = np.packbits(bits)
        mirrored = n % 2 == 1
        own = rng.integers(0, 256, size=near.shape, dtype=np.uint8) if mirrored else near
        kind = TRANSFORMS[n % len(TRANSFORMS)]
        plans.append({
            "source": int(p), "mirrored": mirrored, "hash": own, "mirror": near if mirrored else None, "kind": kind,
            "text": lib["text"][p] + 0.1 * rng.standard_normal(384).astype(np.float32),
            "frames": _transformed(lib["frames"][p * args.frames : (p + 1) * args.frames], kind, rng, caption),
        })  # fmt: skip
    return plans


def _transformed(src, kind: str, rng, caption):  # type: ignore[no-untyped-def]
    """A copy's keyframe embeddings: the source's (keyframes × 512) after a synthetic ``kind`` of transform.

    Every copy is re-encoded (noise 0.15 of a frame's scale); crop and mirror change more of the picture (0.35);
    speed ±10 % samples the source between its keyframes (linear mix of the two nearest); trim drops the first
    keyframe (the last one repeats); overlay and borders add the same caption / border picture to every frame (0.5).
    """
    import numpy as np

    n = len(src)
    noise = {"crop": 0.35, "mirror": 0.35}.get(kind, 0.15)
    if kind in {"speed", "slow"}:
        at = np.clip(np.arange(n) * (1.1 if kind == "speed" else 0.9), 0, n - 1)
        lo = np.floor(at).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        w = (at - lo)[:, None]
        out = (1 - w) * src[lo] + w * src[hi]
    elif kind == "trim":
        out = np.concatenate([src[1:], src[-1:]]) if n > 1 else src.copy()
    else:
        out = src.copy()
    if kind in {"overlay", "borders"}:
        out = out + 0.5 * caption[kind]
    return (out + noise * rng.standard_normal(out.shape)).astype(np.float32)


def _insert_queries(plans: list[dict[str, Any]], library_ids: list[int]) -> list[tuple[int, int]]:
    """The planned query videos in the current database: ``(query video id, source video id)``."""
    from moderation.media.models import Keyframe, Video
    from moderation.reproduction.models import FrameHash
    from moderation.reproduction.services import video_embedding_refresh

    out = []
    for plan in plans:
        video = Video.objects.create(
            title="query", status=Video.Status.READY, duration=30.0, text_embedding=plan["text"].tolist()
        )
        own, mirror = _bits(plan["hash"]), _bits(plan["mirror"]) if plan["mirror"] is not None else None
        FrameHash.objects.bulk_create(
            FrameHash(video=video, t=float(t), quality=100, hash=h, hash_mirror=mirror[t] if mirror else None)
            for t, h in enumerate(own)
        )
        Keyframe.objects.bulk_create(
            Keyframe(video=video, index=i, timestamp=float(i), image="", selected=True, embedding=vec.tolist())
            for i, vec in enumerate(plan["frames"])
        )
        video_embedding_refresh(video_id=video.pk)  # as the media pipeline and the rebuild write it
        out.append((video.pk, library_ids[plan["source"]]))
    return out


def _drop_indexes() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for name in INDEXES:
            cur.execute(f"DROP INDEX IF EXISTS {name}")


def _reindex(keyframe_index: bool) -> dict[str, float]:
    """Build the HNSW indexes (after the bulk load: much faster than loading into them); seconds per index. The
    per-keyframe one only with ``keyframe_index`` (8 rows per video: at 200k videos it would take most of an hour)."""
    from django.db import connection

    took = {}
    with connection.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        for name, sql in INDEXES.items():
            cur.execute(f"DROP INDEX IF EXISTS {name}")
            if name == "keyframe_embedding_hnsw" and not keyframe_index:
                continue
            started = time.perf_counter()
            cur.execute(sql)
            took[name] = round(time.perf_counter() - started, 1)
        cur.execute(
            "ANALYZE moderation_framehash; ANALYZE moderation_keyframe; ANALYZE moderation_video;"
            " ANALYZE moderation_transcriptvector; ANALYZE moderation_picturevector"
        )
    return took


def _sizes() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_total_relation_size('moderation_framehash'), pg_relation_size('moderation_keyframe'), "
            + ", ".join(f"coalesce(pg_relation_size(to_regclass('{name}')), 0)" for name in INDEXES)
        )
        table, keyframes, *hnsw = cur.fetchone()
    return {"hash_table_bytes": int(table), "keyframe_table_bytes": int(keyframes),
            "hnsw_bytes": dict(zip(INDEXES, (int(b) for b in hnsw), strict=True))}  # fmt: skip


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(_pct(times, 0.99), 2),
            "min_ms": round(min(times), 2), "max_ms": round(max(times), 2)}  # fmt: skip


def _shared_buffers(value: str | None) -> None:
    """Restart the embedded PostgreSQL with ``shared_buffers`` = ``value`` (None: back to its default).

    Stopped and started by child processes: the server handle this process holds would not start again."""
    import subprocess
    import sys

    from django.conf import settings
    from django.db import connection, connections

    with connection.cursor() as cur:
        cur.execute(f"ALTER SYSTEM SET shared_buffers = '{value}'" if value else "ALTER SYSTEM RESET shared_buffers")
    connections.close_all()
    for step in ("stop_postgres", "ensure_postgres"):
        code = f"import sys; from pathlib import Path; from workbench.embedded import {step}; {step}(Path(sys.argv[1]))"
        done = subprocess.run(
            [sys.executable, "-c", code, str(settings.EMBEDDED_POSTGRES_DIR)], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"{step} failed: {done.stderr[-2000:]}")


@contextlib.contextmanager
def shared_buffers(value: str | None) -> Iterator[None]:
    """The embedded PostgreSQL runs with ``shared_buffers`` = ``value`` inside the block and its default again
    after it, however the block ends (None: nothing changes)."""
    if not value:
        yield
        return
    _shared_buffers(value)
    try:
        yield
    finally:
        _shared_buffers(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hashes", type=int, default=8, help="per-second PDQ hashes per indexed video")
    parser.add_argument("--frames", type=int, default=8, help="keyframe embeddings per indexed video (a real one's 8)")
    parser.add_argument(
        "--keyframe-index",
        action=argparse.BooleanOptionalAction,
        help="build the per-keyframe HNSW index too and time that channel next to the video embedding's (default: "
        "when large × frames ≤ 400,000; at 200k × 8 it takes most of an hour)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep both databases afterwards and reuse them when they hold the same library (skips the load and "
        "the HNSW builds, which take most of a 200k run; the PDQ copy is still loaded and timed)",
    )
    parser.add_argument(
        "--shared-buffers",
        help="run the embedded PostgreSQL with this shared_buffers (e.g. 2GB), restarting it before and after "
        "(ALTER SYSTEM, reset afterwards); not while tests use the same embedded server",
    )
    parser.add_argument("--warm", type=int, default=400, help="untimed neighbour look-ups per library first")
    parser.add_argument(
        "--ef-search", type=int, help="hnsw.ef_search for the run (default: settings.REPRO_HNSW_EF_SEARCH)"
    )
    parser.add_argument(
        "--arms",
        default="parallel,serial",
        help="retrieval arms timed interleaved, the first reported as ``ratio``: parallel (the two HNSW scans on two "
        "side connections during the PDQ look-up, REPRO_NEIGHBOURS_PARALLEL on) and serial (one statement after it); "
        "pdq-baseline with --pdq-baseline; uncapped: parallel with every PDQ hit confirmed (hash_hits' per_hash 0, as "
        "before the cap per matched hash); iter-relaxed / iter-off: parallel with REPRO_HNSW_ITERATIVE_SCAN "
        "relaxed_order / off for the arm (the distinct-vector scans with or without pgvector's iterative scan); "
        "side-simple / side-prepared: parallel with the two scans sent as plain SQL (parsed and planned each time) / "
        "as statements prepared on the side connections",
    )
    parser.add_argument(
        "--ef-arms",
        default="",
        help="comma-separated PICTURE:TEXT pairs, each an arm: parallel with the picture scan at ef_search PICTURE "
        "and the transcript scan at TEXT (the statements' settings rewritten for the arm), e.g. 20:40",
    )
    parser.add_argument(
        "--parts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after each query's arms, time each part of the retrieval alone on the same query (the video's hashes "
        "and the table mark, the in-memory PDQ search, the confirming query, the picture scan, the transcript scan) "
        "and how long the parallel arm waited for the scans' rows; printed as parts_ms",
    )
    parser.add_argument(
        "--pdq-baseline",
        metavar="COMMIT",
        help="adds the arm pdq-baseline: parallel, the PDQ copy searched by moderation/reproduction/hamming.py at COMMIT",
    )
    args = parser.parse_args()
    if args.shared_buffers and not re.fullmatch(r"\d+(kB|MB|GB)", args.shared_buffers):
        parser.error("--shared-buffers takes a size such as 512MB or 2GB")
    if args.small > args.large:
        parser.error("--small must not exceed --large")
    if args.keyframe_index is None:
        args.keyframe_index = args.large * args.frames <= 400_000
    args.arms = args.arms.split(",")
    if args.pdq_baseline and "pdq-baseline" not in args.arms:
        args.arms.append("pdq-baseline")
    pairs, args.ef_arms = args.ef_arms, {}
    for pair in filter(None, pairs.split(",")):
        picture, _colon, text = pair.partition(":")
        if not (picture.isdigit() and text.isdigit()):
            parser.error("--ef-arms takes PICTURE:TEXT pairs of integers, e.g. 20:40")
        args.ef_arms[f"ef{picture}:{text}"] = (int(picture), int(text))
        args.arms.append(f"ef{picture}:{text}")
    if not args.arms or set(args.arms) - {"parallel", "serial", "pdq-baseline", "uncapped", *ITERATIVE_ARMS,
                                          *SIDE_ARMS, *args.ef_arms}:  # fmt: skip
        parser.error(
            "--arms takes parallel, serial, uncapped, iter-relaxed, iter-off, side-simple, side-prepared and (with "
            "--pdq-baseline) pdq-baseline"
        )
    if "pdq-baseline" in args.arms and not args.pdq_baseline:
        parser.error("the arm pdq-baseline needs --pdq-baseline COMMIT")

    django_setup()
    from django.conf import settings

    if args.ef_search:
        settings.REPRO_HNSW_EF_SEARCH = args.ef_search

    if args.shared_buffers and settings.EMBEDDED_POSTGRES_DIR is None:
        parser.error("--shared-buffers restarts the embedded PostgreSQL; this run uses DATABASE_URL")
    with shared_buffers(args.shared_buffers):
        _run(args)


def _run(args: argparse.Namespace) -> None:
    import numpy as np
    from django.conf import settings
    from django.db import connection, connections
    from django.test.utils import setup_databases, teardown_databases

    from moderation.reproduction import pdq_index, side_connection
    from moderation.reproduction.selectors import hash_hits, video_neighbours
    from moderation.reproduction.services import (
        FRAME_K,
        FRAME_QUERIES,
        FRAME_SIM_MIN,
        TEXT_SIM_MIN,
        TOP_K,
        VIDEO_K,
        VIDEO_SIM_MIN,
        candidates_retrieve,
    )

    rng = np.random.default_rng(args.seed)
    settings.REPRO_NEIGHBOURS_PARALLEL = bool(set(args.arms) - {"serial"})  # opens the side connections
    baseline = module_at(args.pdq_baseline, "moderation/reproduction/hamming.py") if args.pdq_baseline else None
    copies: dict[str, dict[str, Any]] = {}  # per library: the copy's state and its index per arm
    loads = {"start": _load()}
    # The picture channels timed and scored alone: the video embedding (what retrieval uses), and the per-keyframe
    # neighbours (the old channel) where its index is built.
    channels = ["video", "keyframes"] if args.keyframe_index else ["video"]
    with connection.cursor() as cur:
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
        huge_pages = _huge_pages_status(cur)
    # Not the tests' database; one per large size, so a kept 200k library survives runs at other sizes.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_repro_retrieval_{args.large}"
    signature = json.dumps(
        [args.small, args.large, args.queries, args.hashes, args.frames, args.seed, args.keyframe_index, "video-v2"]
    )
    # serialized_aliases=[]: a kept database is not dumped to a string for test rollbacks (minutes at 200k)
    config = setup_databases(verbosity=0, interactive=False, keepdb=args.keep, serialized_aliases=[])
    large_db = connection.settings_dict["NAME"]
    small_db = f"{large_db}_small"
    wrappers: dict[str, Any] = {}
    try:
        wrapper_class = type(connections["default"])
        wrappers["large"] = connections["default"]
        wrappers["small"] = wrapper_class({**connection.settings_dict, "NAME": small_db}, alias="default")
        lib = _library(args.large, args, rng)
        plans = _plan_queries(lib, args, rng)
        prepared = _kept(wrappers, signature) if args.keep else None
        if prepared is None:
            if args.keep:  # the kept databases hold another library: start from an empty schema
                connection.close()
                teardown_databases(config, verbosity=0)
                config = setup_databases(verbosity=0, interactive=False, serialized_aliases=[])
            connection.close()
            wrappers["small"].close()
            with connection._nodb_cursor() as cur:  # a second database with the migrated schema
                cur.execute(f'DROP DATABASE IF EXISTS "{small_db}"')
                cur.execute(f'CREATE DATABASE "{small_db}" TEMPLATE "{large_db}"')
            prepared = {}
            for name, size in (("small", args.small), ("large", args.large)):
                connections["default"] = wrappers[name]
                _drop_indexes()  # loading into live HNSW indexes is much slower than building them afterwards
                started = time.perf_counter()
                # The large library in shuffled order: the sources (the small library's videos) are not its first
                # rows, which an HNSW index built afterwards makes its best-connected nodes (easiest to find).
                order = rng.permutation(size) if name == "large" else None
                library_ids = _fill(size, lib, args, order)
                queries = _insert_queries(plans, library_ids)
                load_s = time.perf_counter() - started
                prepared[name] = {"queries": queries, "videos": size, "load_s": round(load_s, 1),
                                  "hnsw_build_s": _reindex(args.keyframe_index)}  # fmt: skip
                with connection.cursor() as cur:
                    cur.execute("CREATE TABLE bench_meta (signature text, prepared jsonb)")
                    cur.execute("INSERT INTO bench_meta VALUES (%s, %s)", [signature, json.dumps(prepared[name])])
        for name in ("small", "large"):
            connections["default"] = wrappers[name]
            reloads = [pdq_index.reload() for _ in range(2)]  # a restarted worker's first search, twice
            prepared[name] |= {
                "hashes": _hash_count(), "index_build_s": round(min(r.seconds for r in reloads), 2),
                "index_build_runs_s": [round(r.seconds, 2) for r in reloads], **_sizes(),
                "index_bytes": pdq_index.copy_stats()["bytes"], "loadavg": _load(),
            }  # fmt: skip
            print(json.dumps({name: prepared[name] | {"queries": len(prepared[name]["queries"])}}), flush=True)
            state = pdq_index._copy_for_connection()
            copies[name] = {"state": state, "current": state.index}
            if baseline is not None:  # the same rows in the baseline's MultiIndex
                index = state.index
                copies[name]["pdq-baseline"] = base = baseline.MultiIndex(
                    chunks=index.chunks, chunk_bits=index.chunk_bits
                )
                base.add(index._words[: index.size].astype(">u8").view(np.uint8).reshape(-1, 32),
                         index._ids[: index.size], index._video_ids[: index.size])  # fmt: skip
                base.merge()
            for qid, _source in prepared[name]["queries"]:  # warm: caches, HNSW pages, the copy
                candidates_retrieve(video_id=qid)
            # A serving index is hot: after a restart (--shared-buffers) the HNSW pages are still outside
            # PostgreSQL's cache, so look up --warm random library videos first (not timed, not the queries).
            with connection.cursor() as cur:
                cur.execute("SELECT id FROM moderation_video ORDER BY random() LIMIT %s", [args.warm])
                warm_ids = [row[0] for row in cur.fetchall()]
            for vid in warm_ids:
                for channel in channels:
                    video_neighbours(
                        video_id=vid, frame_queries=FRAME_QUERIES, k_frames=FRAME_K, k_text=TOP_K, k_videos=VIDEO_K,
                        channel=channel,
                    )  # fmt: skip

        times: dict[str, list[float]] = {"small": [], "large": []}  # the first arm's
        arm_times: dict[str, dict[str, list[float]]] = {a: {"small": [], "large": []} for a in args.arms}
        hash_times: dict[str, list[float]] = {"small": [], "large": []}
        hnsw_times: dict[str, dict[str, list[float]]] = {c: {"small": [], "large": []} for c in channels}
        found = {"small": 0, "large": 0}
        found_mirrored = {"small": [0, 0], "large": [0, 0]}
        found_by: dict[str, dict[str, int]] = {c: {"small": 0, "large": 0} for c in [*channels, "text"]}
        by_kind: dict[str, dict[str, list[int]]] = {c: {} for c in channels}  # at large: [found, queries]
        round_ratios = []
        backends: dict[str, list[int]] = {}
        for name in ("small", "large"):
            connections["default"] = wrappers[name]
            with wrappers[name].cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                backends[name] = [int(cur.fetchone()[0])]
            backends[name] += side_connection.backend_pids()  # the parallel arm's side backends (opened while warming)
        cpu = {f"{a}/{name}": {"python": 0.0, "backend": 0.0} for a in args.arms for name in ("small", "large")}
        parts: dict[str, dict[str, list[float]]] = {}
        waits: dict[str, list[float]] = {"small": [], "large": []}
        waited = (lambda: _time_waits(waits)) if args.parts else contextlib.nullcontext
        arm_found = {a: {"small": [0, 0, 0], "large": [0, 0, 0]} for a in args.arms}
        same_candidates = {"small": [0, 0], "large": [0, 0]}  # retrievals whose arms all returned equal candidates
        if args.ef_arms:
            _per_channel_ef()
        iterative_default = settings.REPRO_HNSW_ITERATIVE_SCAN
        _side_arms()
        # the parts and the channels' scans below run with the first arm's settings
        settings.REPRO_HNSW_ITERATIVE_SCAN = ITERATIVE_ARMS.get(args.arms[0], iterative_default)
        loads["measure_start"] = _load()
        for r in range(args.rounds):
            this_round: dict[str, list[float]] = {"small": [], "large": []}
            order = ("small", "large") if r % 2 == 0 else ("large", "small")
            for i in range(args.queries):
                for name in order:
                    connections["default"] = wrappers[name]
                    qid, source = prepared[name]["queries"][i]
                    by_arm: dict[str, Any] = {}
                    for arm in args.arms if (r + i) % 2 == 0 else args.arms[::-1]:  # which arm first alternates
                        settings.REPRO_NEIGHBOURS_PARALLEL = arm != "serial"
                        _EF_ARM[0] = args.ef_arms.get(arm)
                        settings.REPRO_HNSW_ITERATIVE_SCAN = ITERATIVE_ARMS.get(arm, iterative_default)
                        _SIDE_ARM[0] = SIDE_ARMS.get(arm)
                        copies[name]["state"].index = copies[name].get(arm, copies[name]["current"])
                        c0, b0 = time.process_time(), sum(_backend_cpu_s(p) for p in backends[name])
                        t0 = time.perf_counter()
                        with (
                            waited() if arm == args.arms[0] else contextlib.nullcontext(),
                            _every_hit() if arm == "uncapped" else contextlib.nullcontext(),
                        ):
                            _WAIT_LIBRARY[0] = name
                            got = candidates_retrieve(video_id=qid)
                        elapsed = (time.perf_counter() - t0) * 1000
                        cpu[f"{arm}/{name}"]["python"] += time.process_time() - c0
                        cpu[f"{arm}/{name}"]["backend"] += sum(_backend_cpu_s(p) for p in backends[name]) - b0
                        arm_times[arm][name].append(elapsed)
                        tally = arm_found[arm][name]  # the source as a candidate, and through each channel
                        ev = got.get(source)
                        tally[0] += ev is not None
                        tally[1] += bool(ev and ev["video_sim"])
                        tally[2] += bool(ev and ev["text_sim"])
                        if arm == args.arms[0]:
                            result = got
                        by_arm[arm] = got
                    same_candidates[name][0] += all(got == by_arm[args.arms[0]] for got in by_arm.values())
                    same_candidates[name][1] += 1
                    settings.REPRO_NEIGHBOURS_PARALLEL = args.arms[0] != "serial"
                    _EF_ARM[0] = args.ef_arms.get(args.arms[0])
                    settings.REPRO_HNSW_ITERATIVE_SCAN = ITERATIVE_ARMS.get(args.arms[0], iterative_default)
                    _SIDE_ARM[0] = SIDE_ARMS.get(args.arms[0])
                    copies[name]["state"].index = copies[name]["current"]
                    elapsed = arm_times[args.arms[0]][name][-1]
                    times[name].append(elapsed)
                    this_round[name].append(elapsed)
                    found[name] += int(source in result)
                    if plans[i]["mirrored"]:
                        found_mirrored[name][0] += int(source in result)
                        found_mirrored[name][1] += 1
                    queries_hex = [(float(t), bytes(row).hex(), False) for t, row in enumerate(plans[i]["hash"])]
                    if plans[i]["mirror"] is not None:
                        queries_hex += [(float(t), bytes(row).hex(), True) for t, row in enumerate(plans[i]["mirror"])]
                    t0 = time.perf_counter()
                    hash_hits(queries=queries_hex, exclude_video_id=qid)
                    hash_times[name].append((time.perf_counter() - t0) * 1000)
                    if args.parts:
                        for part, value in _part_times(qid, backends[name][0]).items():
                            parts.setdefault(part, {"small": [], "large": []})[name].append(value)
                    # The embedding neighbours (pgvector HNSW, one statement) alone, per picture channel (alternating
                    # which goes first): would they alone have found the source (above the candidate thresholds)?
                    for channel in channels if (r + i) % 2 == 0 else channels[::-1]:
                        t0 = time.perf_counter()
                        neighbours = video_neighbours(
                            video_id=qid, frame_queries=FRAME_QUERIES, k_frames=FRAME_K, k_text=TOP_K,
                            k_videos=VIDEO_K, channel=channel,
                        )  # fmt: skip
                        hnsw_times[channel][name].append((time.perf_counter() - t0) * 1000)
                        if channel == "video":
                            hit = any(v == source and s >= VIDEO_SIM_MIN for v, s in neighbours.videos)
                            found_by["text"][name] += any(v == source and s >= TEXT_SIM_MIN for v, s in neighbours.text)
                        else:
                            hit = any(v == source and s >= FRAME_SIM_MIN for v, _t, _q, s in neighbours.frames)
                        found_by[channel][name] += hit
                        if name == "large":
                            tally = by_kind[channel].setdefault(plans[i]["kind"], [0, 0])
                            tally[0], tally[1] = tally[0] + hit, tally[1] + 1
            round_ratios.append(statistics.median(this_round["large"]) / statistics.median(this_round["small"]))
        loads["end"] = _load()
        connections["default"] = wrappers["large"]
    finally:
        side_connection.close()  # before dropping a database they are connected to
        small = wrappers.get("small")
        if small is not None:
            small.close()
        connections["default"] = wrappers.get("large", connections["default"])
        connection.close()
        if not args.keep:
            if small is not None:
                with connection._nodb_cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{small_db}"')
            teardown_databases(config, verbosity=0)

    s, lg = _summary(times["small"]), _summary(times["large"])
    hs, hl = _summary(hash_times["small"]), _summary(hash_times["large"])
    neighbours_ms = {}
    for channel in channels:
        es, el = _summary(hnsw_times[channel]["small"]), _summary(hnsw_times[channel]["large"])
        neighbours_ms[channel] = {"small_p50": es["p50_ms"], "small_p99": es["p99_ms"], "large_p50": el["p50_ms"],
                                  "large_p99": el["p99_ms"], "ratio": round(el["p50_ms"] / es["p50_ms"], 3)}  # fmt: skip
    n = args.queries * args.rounds
    big = prepared["large"]
    # Medians, but the mean for the backend CPU (/proc counts 10 ms ticks: a median of ~2 ms scans reads 0).
    centre = {part: statistics.fmean if part.endswith("cpu") else statistics.median for part in parts}
    parts_ms = {
        part: {"small_p50": round(centre[part](v["small"]), 3), "large_p50": round(centre[part](v["large"]), 3),
               "growth": round(centre[part](v["large"]) - centre[part](v["small"]), 3),
               "large_p99": round(_pct(v["large"], 0.99), 3)}
        for part, v in parts.items()
    }  # fmt: skip
    if waits["small"]:
        parts_ms["wait_for_scans"] = {
            "small_p50": round(statistics.median(waits["small"]), 3),
            "large_p50": round(statistics.median(waits["large"]), 3),
            "growth": round(statistics.median(waits["large"]) - statistics.median(waits["small"]), 3),
            "large_p99": round(_pct(waits["large"], 0.99), 3),
        }
    arms = {}
    for arm in args.arms:
        a_s, a_l = _summary(arm_times[arm]["small"]), _summary(arm_times[arm]["large"])
        arms[arm] = {"ratio": round(a_l["p50_ms"] / a_s["p50_ms"], 3), "small_p50_ms": a_s["p50_ms"],
                     "large_p50_ms": a_l["p50_ms"], "small_p99_ms": a_s["p99_ms"], "large_p99_ms": a_l["p99_ms"],
                     "ratio_p99": round(a_l["p99_ms"] / a_s["p99_ms"], 3),
                     "recall_source_picture_text": {k: [round(x / n, 4) for x in v] for k, v in arm_found[arm].items()}}  # fmt: skip
    print(json.dumps({
        "ratio": round(lg["p50_ms"] / s["p50_ms"], 3),
        "ratio_basis": f"p50 of candidates_retrieve at large / at small, queries interleaved; arm {args.arms[0]}",
        "arms": arms,
        # Retrievals (per library) whose arms all returned the same candidates with the same evidence, of all.
        "arms_same_candidates": same_candidates,
        "ratio_p99": round(lg["p99_ms"] / s["p99_ms"], 3),
        "ratio_per_round": [round(x, 3) for x in round_ratios],
        "ratio_round_min_max": [round(min(round_ratios), 3), round(max(round_ratios), 3)],
        "p99_ms_large": lg["p99_ms"],
        "recall_source_in_candidates": round(min(found.values()) / n, 4),
        "recall_mirrored": round(min(a / max(b, 1) for a, b in found_mirrored.values()), 4),
        # The picture channels alone: the source among the neighbours above the candidate threshold.
        "recall_video_neighbours": {k: round(v / n, 4) for k, v in found_by["video"].items()},
        "recall_keyframe_neighbours": {k: round(v / n, 4) for k, v in found_by["keyframes"].items()}
        if "keyframes" in found_by else None,
        "recall_by_transform_large": {c: {k: round(a / b, 3) for k, (a, b) in sorted(t.items())}
                                      for c, t in by_kind.items()},
        "recall_text_neighbours": {k: round(v / n, 4) for k, v in found_by["text"].items()},
        "index_build_s": big["index_build_s"], "index_bytes": big["index_bytes"],
        "index_bytes_per_hash": round(big["index_bytes"] / big["hashes"], 1),
        "small_p50_ms": s["p50_ms"], "small_p99_ms": s["p99_ms"], "large_p50_ms": lg["p50_ms"],
        "large_min_max_ms": [lg["min_ms"], lg["max_ms"]], "small_min_max_ms": [s["min_ms"], s["max_ms"]],
        "small_hash_p50_ms": hs["p50_ms"], "large_hash_p50_ms": hl["p50_ms"], "large_hash_p99_ms": hl["p99_ms"],
        "hash_ratio": round(hl["p50_ms"] / hs["p50_ms"], 3),
        "neighbours_statement_ms": neighbours_ms, "parts_ms": parts_ms or None, "frame_channel": settings.REPRO_FRAME_NEIGHBOURS,
        # Mean CPU per retrieval (this process; its PostgreSQL backend, from /proc at 10 ms ticks, summed over
        # all queries): what load from other processes does not inflate, unlike the wall-clock times above.
        "cpu_ms_per_retrieval": {k: {part: round(v * 1000 / n, 2) for part, v in c.items()} for k, c in cpu.items()},
        "neighbours_parallel": settings.REPRO_NEIGHBOURS_PARALLEL,
        "small_videos": args.small, "large_videos": args.large, "hashes_per_video": args.hashes,
        "keyframes_per_video": args.frames, "keyframe_table_bytes": big["keyframe_table_bytes"],
        "large_hashes": big["hashes"], "n_queries_each": n, "index_build_runs_s": big["index_build_runs_s"],
        "hash_table_bytes": big["hash_table_bytes"], "hnsw_bytes": big["hnsw_bytes"],
        "load_large_s": big["load_s"], "hnsw_build_large_s": big["hnsw_build_s"], "loadavg": loads, "shared_buffers": shared_buffers, "huge_pages": huge_pages, "hnsw_ef_search": settings.REPRO_HNSW_EF_SEARCH,
        "hnsw_iterative_scan_first_arm": settings.REPRO_HNSW_ITERATIVE_SCAN,
    }))  # fmt: skip


def _every_hit():  # type: ignore[no-untyped-def]
    """The arm ``uncapped``: retrieval with ``hash_hits(per_hash=0)`` (as ``repro_duplicates._every_hit``)."""
    from repro_duplicates import _every_hit as every

    return every()


_EF_ARM: list[tuple[int, int] | None] = [None]  # the arm's (picture, transcript) ef_search; None: the setting's
_SIDE_ARM: list[bool | None] = [None]  # the arm's ``side_connection.prepares``; None: the connection's own


def _side_arms() -> None:
    """The arms side-simple / side-prepared: ``side_connection.prepares`` answers the current arm's (``_SIDE_ARM``)."""
    from moderation.reproduction import side_connection

    original = side_connection.prepares
    side_connection.prepares = lambda: original() if _SIDE_ARM[0] is None else _SIDE_ARM[0]  # type: ignore[assignment]


def _per_channel_ef() -> None:
    """``--ef-arms``: the picture and transcript statements ``selectors.video_neighbours_sql`` makes get the current
    arm's ef_search (``_EF_ARM``) in their settings, each its own (the app has one setting for both)."""
    from moderation.reproduction import selectors

    original = selectors.video_neighbours_sql

    def sql(**kwargs):  # type: ignore[no-untyped-def]
        text = original(**kwargs)
        arm, part = _EF_ARM[0], kwargs.get("parts", "all")
        if arm is None or part not in ("picture", "text"):
            return text
        ef = arm[0] if part == "picture" else arm[1]
        return re.sub(
            r"set_config\('hnsw\.ef_search', '\d+'", f"set_config('hnsw.ef_search', '{int(ef)}'", text, count=1
        )

    selectors.video_neighbours_sql = sql  # type: ignore[assignment]
    original_statement = selectors.video_neighbours_statement

    def statement(**kwargs):  # type: ignore[no-untyped-def]
        session, text = original_statement(**kwargs)
        arm, part = _EF_ARM[0], kwargs.get("parts", "all")
        if arm is None or part not in ("picture", "text"):
            return session, text
        ef = arm[0] if part == "picture" else arm[1]
        return re.sub(r"'hnsw\.ef_search', '\d+'", f"'hnsw.ef_search', '{int(ef)}'", session, count=1), text

    selectors.video_neighbours_statement = statement  # type: ignore[assignment]


_WAIT_LIBRARY = ["small"]  # which library the retrieval being timed runs on (for _time_waits)


@contextlib.contextmanager
def _time_waits(waits: dict[str, list[float]]) -> Iterator[None]:
    """While in the block, ``PendingNeighbours.result`` (the retrieval reading the scans' rows, waiting for the side
    connections where they are not done) is timed into ``waits[library]``. Entered and left around each timed
    retrieval of the first arm; the wrapper's cost (two clock reads) is inside the retrieval it times."""
    from moderation.reproduction import selectors

    original = selectors.PendingNeighbours.result

    def timed(self):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return original(self)
        finally:
            waits[_WAIT_LIBRARY[0]].append((time.perf_counter() - t0) * 1000)

    selectors.PendingNeighbours.result = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        selectors.PendingNeighbours.result = original  # type: ignore[method-assign]


def _part_times(qid: int, backend: int) -> dict[str, float]:
    """Each part of ``candidates_retrieve(video_id=qid)`` alone, on Django's connection, in ms (and the picture and
    transcript scans' backend CPU, and how many candidates the PDQ search read before its prefilter): what grows
    with the library, part by part. Not the retrieval's own path (there the scans overlap the PDQ path)."""
    import numpy as np
    from django.db import connection

    from moderation.reproduction import hamming, pdq_index, selectors, services

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    queries, mark = selectors.hash_queries_marked(qid)
    out["hash_queries_and_mark"] = (time.perf_counter() - t0) * 1000
    state = pdq_index._copy_for_connection()
    with state.lock:
        pdq_index._catch_up(state, mark)
    codes = hamming.hex_codes([h for _t, h, _m in queries])
    t0 = time.perf_counter()
    found = state.index.search(codes, 31, exclude_video_id=qid)
    out["pdq_search_in_memory"] = (time.perf_counter() - t0) * 1000
    index = state.index
    probes, _qc = index._probes(hamming.as_words(codes), 31)
    offsets = index._offsets
    out["pdq_candidates"] = (
        float((offsets[probes + 1].astype(np.int64) - offsets[probes]).sum()) if offsets is not None else 0.0
    )
    raw = [
        pdq_index.RawHit(int(i), int(q), int(d)) for i, q, d in zip(found.ids, found.query, found.distance, strict=True)
    ]
    t0 = time.perf_counter()
    selectors.confirm_hash_hits(queries=[q for q in queries if q[1]], raw=raw)
    out["pdq_confirm_query"] = (time.perf_counter() - t0) * 1000
    for part in ("picture", "text"):
        sql = selectors.video_neighbours_sql(
            video_id=qid, frame_queries=services.FRAME_QUERIES, k_frames=services.FRAME_K, k_text=services.TOP_K,
            k_videos=services.VIDEO_K, parts=part,
        )  # fmt: skip
        b0, t0 = _backend_cpu_s(backend), time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(sql)
            cur.nextset()
            cur.fetchall()
        out[f"{part}_scan"] = (time.perf_counter() - t0) * 1000
        out[f"{part}_scan_backend_cpu"] = (_backend_cpu_s(backend) - b0) * 1000
    return out


def _kept(wrappers: dict[str, Any], signature: str) -> dict[str, dict[str, Any]] | None:
    """What an earlier ``--keep`` run prepared, when both databases still hold this library."""
    from django.db import connections
    from django.db.utils import OperationalError, ProgrammingError

    prepared = {}
    for name in ("small", "large"):
        connections["default"] = wrappers[name]
        try:
            with connections["default"].cursor() as cur:
                cur.execute("SELECT prepared FROM bench_meta WHERE signature = %s", [signature])
                row = cur.fetchone()
        except (OperationalError, ProgrammingError):
            connections["default"].close()
            row = None
        if row is None:
            connections["default"] = wrappers["large"]
            return None
        data = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        prepared[name] = data | {"queries": [tuple(q) for q in data["queries"]], "reused": True}
    connections["default"] = wrappers["large"]
    return prepared


def _hash_count() -> int:
    from moderation.reproduction.models import FrameHash

    return FrameHash.objects.count()


if __name__ == "__main__":
    main()
