"""HNSW ``ef_search`` against cost and recall of the embedding neighbours, on the 200k library a kept run left.

Runs ``selectors.video_neighbours`` (the one statement ``candidates_retrieve`` sends: the video's embedding — or with
``--channel keyframes`` its spread keyframes — and its transcript, each against its HNSW index) for the planted
near-copies of ``bench/repro_retrieval.py``,
each ``ef_search`` in turn for the same query (so load from other processes falls on all alike), after ``--warm``
untimed look-ups of random library videos. Recall: the source among the neighbours above the candidate
thresholds (``VIDEO_SIM_MIN`` or ``FRAME_SIM_MIN``, ``TEXT_SIM_MIN``), as ``repro_retrieval`` counts it.

    .venv/bin/python bench/repro_retrieval.py --small 1000 --large 200000 --keep   # once: builds, keeps
    .venv/bin/python bench/repro_ef_search.py [--ef 20 40 60 100 200] [--rounds 3] [--shared-buffers 2GB] [--query-frames 8]
    .venv/bin/python bench/repro_ef_search.py --plants 80 --plant-seed 1 --ef 12 16 20 24 32 40   # choose on these

``--plants N`` chooses ``ef_search`` on a plant set apart from the one that reports: N new near-copies of random
library videos in both libraries (seed ``--plant-seed``), never inserted; each channel's scan alone per ``ef_search``.

``--query-frames 8`` (``--channel keyframes`` only, on a library built with ``--keyframe-index``) also times query
videos made of 8 noisy library keyframes and per-frame recall.

The last line is one JSON object: ``ratio`` (p50 at the configured ``REPRO_HNSW_EF_SEARCH`` / p50 at 100, the old
default), then per ``ef_search`` the p50 / p99 ms and both recalls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.repro_ef_search``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402
from repro_retrieval import _backend_cpu_s, _load, _pct, shared_buffers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ef", type=int, nargs="+", default=[20, 40, 60, 100, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=400)
    parser.add_argument("--database", default="bench_repro_retrieval_200000")
    parser.add_argument("--channel", choices=["video", "keyframes"], help="default: settings.REPRO_FRAME_NEIGHBOURS")
    parser.add_argument(
        "--query-frames",
        type=int,
        default=0,
        help="also time query videos with this many keyframes (each a noisy copy of a random library keyframe; "
        "inserted in a transaction rolled back afterwards): what a real video's look-up costs",
    )
    parser.add_argument("--shared-buffers", help="restart the embedded PostgreSQL with this shared_buffers first")
    parser.add_argument(
        "--plants",
        type=int,
        default=0,
        help="instead of the kept run's planted copies: this many new near-copies of random library videos in each "
        "library (small and large database), made as repro_retrieval makes its copies but from --plant-seed, never "
        "inserted (each channel's scan is sent with the copy's vector): a plant set apart from the one that reports, "
        "to choose each channel's ef_search on; per channel and ef_search the scan's p50 and the copies' recall",
    )
    parser.add_argument("--plant-seed", type=int, default=1)
    args = parser.parse_args()
    if args.query_frames and args.channel != "keyframes":
        parser.error("--query-frames times the keyframes channel: add --channel keyframes")
    django_setup()
    with shared_buffers(args.shared_buffers):
        _plants(args) if args.plants else _run(args)


def _run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.db import connection

    from moderation.reproduction.selectors import video_neighbours
    from moderation.reproduction.services import (
        FRAME_K,
        FRAME_QUERIES,
        FRAME_SIM_MIN,
        TEXT_SIM_MIN,
        TOP_K,
        VIDEO_K,
        VIDEO_SIM_MIN,
    )

    channel = args.channel or settings.REPRO_FRAME_NEIGHBOURS

    configured = int(settings.REPRO_HNSW_EF_SEARCH)
    efs = sorted(set(args.ef) | {configured, 100})
    connection.close()
    connection.settings_dict["NAME"] = args.database
    with connection.cursor() as cur:
        cur.execute("SELECT prepared FROM bench_meta")
        prepared = cur.fetchone()[0]
        prepared = prepared if isinstance(prepared, dict) else json.loads(prepared)
        cur.execute("SELECT id FROM moderation_video ORDER BY random() LIMIT %s", [args.warm])
        warm = [row[0] for row in cur.fetchall()]
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
    queries = [tuple(q) for q in prepared["queries"]]

    def look_up(video_id: int, ef: int):  # type: ignore[no-untyped-def]
        settings.REPRO_HNSW_EF_SEARCH = ef
        return video_neighbours(
            video_id=video_id,
            frame_queries=FRAME_QUERIES,
            k_frames=FRAME_K,
            k_text=TOP_K,
            k_videos=VIDEO_K,
            channel=channel,
        )

    for vid in warm:
        look_up(vid, max(efs))
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = int(cur.fetchone()[0])
    times: dict[int, list[float]] = {ef: [] for ef in efs}
    cpu = dict.fromkeys(efs, 0.0)  # the backend's CPU seconds: what load from other processes does not inflate
    found: dict[int, list[int]] = {ef: [0, 0] for ef in efs}
    load_start = _load()
    for r in range(args.rounds):
        for qid, source in queries:
            for ef in efs if r % 2 == 0 else efs[::-1]:
                b0, t0 = _backend_cpu_s(backend), time.perf_counter()
                got = look_up(qid, ef)
                times[ef].append((time.perf_counter() - t0) * 1000)
                cpu[ef] += _backend_cpu_s(backend) - b0
                if r == 0:
                    found[ef][0] += any(v == source and s >= FRAME_SIM_MIN for v, _t, _q, s in got.frames) or any(
                        v == source and s >= VIDEO_SIM_MIN for v, s in got.videos
                    )
                    found[ef][1] += any(v == source and s >= TEXT_SIM_MIN for v, s in got.text)
    multi = _multi_frame(args, efs, look_up, backend) if args.query_frames else None
    settings.REPRO_HNSW_EF_SEARCH = configured
    n = len(queries)
    per_ef = {
        str(ef): {"p50_ms": round(statistics.median(times[ef]), 2), "p99_ms": round(_pct(times[ef], 0.99), 2),
                  "backend_cpu_ms": round(cpu[ef] * 1000 / len(times[ef]), 2),
                  "recall_picture_neighbours": round(found[ef][0] / n, 4), "recall_text_neighbours": round(found[ef][1] / n, 4)}
        for ef in efs
    }  # fmt: skip
    print(json.dumps({
        "ratio": round(statistics.median(times[configured]) / statistics.median(times[100]), 3),
        "ratio_basis": f"p50 of video_neighbours at ef_search {configured} (configured) / at 100",
        "configured_ef_search": configured, "channel": channel, "per_ef_search": per_ef, "queries": n, "rounds": args.rounds,
        "multi_frame_queries": multi, "videos": prepared["videos"], "shared_buffers": shared_buffers, "loadavg": {"start": load_start, "end": _load()},
    }))  # fmt: skip


# One channel's HNSW scan as ``selectors`` sends it (the distinct vectors, ``k`` + 2 of them; here the query's own
# vector is not in the graph, so ``k`` + 1), with the query vector sent instead of read from its video row.
_PLANT_SCAN = {
    "picture": "SELECT key, 1 - (embedding <=> %(q)s::halfvec) FROM moderation_picturevector"
    " ORDER BY embedding <=> %(q)s::halfvec LIMIT %(k)s",
    "text": "SELECT key, 1 - (embedding <=> %(q)s::vector) FROM moderation_transcriptvector"
    " ORDER BY embedding <=> %(q)s::vector LIMIT %(k)s",
}


def _plants(args: argparse.Namespace) -> None:
    """``--plants``: new near-copies (``--plant-seed``) of random library videos in both kept libraries; per channel
    and ``ef_search`` (interleaved per copy, the order alternating) the scan's time and whether the source's vector
    is among the neighbours above the channel's candidate threshold."""
    import numpy as np
    from django.db import connection
    from repro_retrieval import TRANSFORMS, _transformed

    from moderation.media.analyzers import video_embedding
    from moderation.reproduction.services import TEXT_SIM_MIN, TOP_K, VIDEO_K, VIDEO_SIM_MIN

    rng = np.random.default_rng(args.plant_seed)
    efs = sorted(set(args.ef))
    bar = {"picture": VIDEO_SIM_MIN, "text": TEXT_SIM_MIN}
    k = {"picture": VIDEO_K + 1, "text": TOP_K + 1}
    caption = {c: rng.standard_normal(512).astype(np.float32) for c in ("overlay", "borders")}
    report: dict[str, dict[str, dict[str, float]]] = {}
    for library, database in (("small", args.database + "_small"), ("large", args.database)):
        connection.close()
        connection.settings_dict["NAME"] = database
        with connection.cursor() as cur:
            cur.execute(
                "SELECT id, text_embedding::text, text_key, visual_key FROM moderation_video"
                " WHERE title LIKE 'bench %%' AND text_embedding IS NOT NULL AND visual_key IS NOT NULL"
                " ORDER BY md5(id::text || %s) LIMIT %s",
                [str(args.plant_seed), args.plants],
            )
            sources = cur.fetchall()
            cur.execute("SELECT id FROM moderation_video ORDER BY random() LIMIT %s", [args.warm])
            warm = [row[0] for row in cur.fetchall()]
        plants = []
        for n, (vid, text, text_key, visual_key) in enumerate(sources):
            with connection.cursor() as cur:
                cur.execute("SELECT embedding::text FROM moderation_keyframe WHERE video_id = %s ORDER BY index", [vid])
                frames = np.array([json.loads(r[0]) for r in cur.fetchall()], dtype=np.float32)
            kind = TRANSFORMS[n % len(TRANSFORMS)]
            t = np.array(json.loads(text), dtype=np.float32)
            plants.append({
                "text": str((t + 0.1 * rng.standard_normal(t.shape[0])).tolist()),
                "picture": str(video_embedding(_transformed(frames, kind, rng, caption))),
                "keys": {"text": str(text_key), "picture": str(visual_key)}, "kind": kind,
            })  # fmt: skip
        times: dict[str, dict[int, list[float]]] = {c: {ef: [] for ef in efs} for c in _PLANT_SCAN}
        found: dict[str, dict[int, int]] = {c: dict.fromkeys(efs, 0) for c in _PLANT_SCAN}
        with connection.cursor() as cur:
            cur.execute("SET hnsw.iterative_scan = relaxed_order")
            for vid in warm:  # the pages into the buffer cache
                for channel, column in (("picture", "visual_embedding"), ("text", "text_embedding")):
                    cur.execute(f"SELECT {column}::text FROM moderation_video WHERE id = %s", [vid])
                    row = cur.fetchone()
                    if row and row[0]:
                        cur.execute("SET hnsw.ef_search = 40")
                        cur.execute(_PLANT_SCAN[channel], {"q": row[0], "k": k[channel]})
                        cur.fetchall()
            for r in range(args.rounds):
                for i, plant in enumerate(plants):
                    for channel in _PLANT_SCAN:
                        for ef in efs if (r + i) % 2 == 0 else efs[::-1]:
                            cur.execute(f"SET hnsw.ef_search = {int(ef)}")
                            t0 = time.perf_counter()
                            cur.execute(_PLANT_SCAN[channel], {"q": plant[channel], "k": k[channel]})
                            rows = cur.fetchall()
                            times[channel][ef].append((time.perf_counter() - t0) * 1000)
                            if r == 0:
                                found[channel][ef] += any(
                                    str(key) == plant["keys"][channel] and sim >= bar[channel] for key, sim in rows
                                )
            cur.execute("RESET hnsw.ef_search; RESET hnsw.iterative_scan")
        report[library] = {
            f"{channel}/{ef}": {"p50_ms": round(statistics.median(times[channel][ef]), 3),
                                "recall": round(found[channel][ef] / len(plants), 4)}
            for channel in _PLANT_SCAN for ef in efs
        }  # fmt: skip
        print(json.dumps({library: report[library]}), flush=True)
    print(json.dumps({"plants": args.plants, "plant_seed": args.plant_seed, "rounds": args.rounds, **report,
                      "loadavg": _load()}))  # fmt: skip


def _multi_frame(args: argparse.Namespace, efs: list[int], look_up, backend: int) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Query videos with ``--query-frames`` keyframes: per ``ef_search`` the statement's p50 / p99 and how often a
    query frame's own source keyframe is among its neighbours above ``FRAME_SIM_MIN`` (rolled back afterwards)."""
    import numpy as np
    from django.db import connection, transaction

    from moderation.media.models import Keyframe, Video
    from moderation.reproduction.services import FRAME_SIM_MIN

    rng = np.random.default_rng(1)
    n_videos, m = 20, args.query_frames
    out: dict[str, dict[str, float]] = {}

    class _RollBack(Exception):
        pass

    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SELECT video_id, embedding::text FROM moderation_keyframe ORDER BY random() LIMIT %s",
                            [n_videos * m])  # fmt: skip
                library = cur.fetchall()
            videos = []
            for j in range(n_videos):
                video = Video.objects.create(title="bench query", status=Video.Status.READY, duration=30.0)
                rows = library[j * m : (j + 1) * m]
                Keyframe.objects.bulk_create(
                    Keyframe(video=video, index=i, timestamp=float(i), image="", selected=True,
                             embedding=(np.array(json.loads(e)) + 0.1 * rng.standard_normal(512)).tolist())
                    for i, (_v, e) in enumerate(rows)
                )  # fmt: skip
                videos.append((video.pk, [v for v, _e in rows]))
            times: dict[int, list[float]] = {ef: [] for ef in efs}
            cpu = dict.fromkeys(efs, 0.0)
            hits = dict.fromkeys(efs, 0)
            for r in range(2):
                for vid, sources in videos:
                    for ef in efs:
                        b0, t0 = _backend_cpu_s(backend), time.perf_counter()
                        got = look_up(vid, ef)
                        times[ef].append((time.perf_counter() - t0) * 1000)
                        cpu[ef] += _backend_cpu_s(backend) - b0
                        if r == 0:
                            near = {(qt, v) for v, _t, qt, s in got.frames if s >= FRAME_SIM_MIN}
                            hits[ef] += sum((float(i), src) in near for i, src in enumerate(sources))
            for ef in efs:
                out[str(ef)] = {"p50_ms": round(statistics.median(times[ef]), 2), "p99_ms": round(_pct(times[ef], 0.99), 2),
                                "backend_cpu_ms": round(cpu[ef] * 1000 / len(times[ef]), 2),
                                "recall_per_frame": round(hits[ef] / (n_videos * m), 4)}  # fmt: skip
            raise _RollBack
    except _RollBack:
        pass
    return {"query_frames": m, "videos": n_videos, **out}  # type: ignore[dict-item]


if __name__ == "__main__":
    main()
