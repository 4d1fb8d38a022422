"""Reproduction retrieval in a library full of reposts: exact-duplicate vectors and dead index entries.

A library of ``--library`` synthetic videos (``repro_retrieval``'s generator: 8 PDQ hashes, 8 keyframes, video and
transcript embeddings, HNSW indexes built after the load) receives, through the live indexes as a platform would:

* a repost farm of N videos sharing one transcript embedding ``T`` and one picture vector ``P`` (and the same PDQ
  hashes) exactly;
* a source S whose transcript is near T (cosine ~0.95) and whose picture is near P, and its copy C (transcript a
  little different from S's: cosine ~0.99; picture re-encoded; hashes 10-31 bits off S's).

Then, per N in ``--dups``, the timed call is ``candidates_retrieve`` (the product path) for C (must hold S; by
transcript S first) and for a new repost R of the farm (its transcript and picture neighbours must be farm videos at
similarity 1, as many as asked). Each channel's answer is checked against an exact scan (no index). ``--dead`` adds
the dead-entry states, autovacuum off: the farm deleted (reposts taken down) and inserted again, and every video's
embeddings rewritten twice (two full ``rebuild_repro_index`` runs), before a vacuum.

    .venv/bin/python bench/repro_duplicates.py [--library 3000] [--dups 50,200,1000] [--repeats 7]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at  # noqa: E402


def _unit(v):  # type: ignore[no-untyped-def]
    import numpy as np

    return (v / np.linalg.norm(v)).astype(np.float32)


def _near(v, cos: float, rng):  # type: ignore[no-untyped-def]
    """A unit vector at about cosine ``cos`` from the unit vector ``v``."""
    import numpy as np

    noise = _unit(rng.standard_normal(v.shape[0]))
    noise = _unit(noise - float(noise @ v) * v)
    return _unit(cos * v + np.sqrt(1 - cos * cos) * noise)


def _insert_video(*, text, picture, hashes, mirror=None) -> int:  # type: ignore[no-untyped-def]
    from moderation.media.models import Video
    from moderation.reproduction.models import FrameHash

    video = Video.objects.create(
        title="planted", status=Video.Status.READY, duration=30.0, text_embedding=text.tolist(),
        visual_embedding=picture.tolist(),
    )  # fmt: skip
    FrameHash.objects.bulk_create(
        FrameHash(video=video, t=float(t), quality=100, hash=h, hash_mirror=None) for t, h in enumerate(hashes)
    )
    return int(video.pk)


def _farm(n: int, text, picture, hashes) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` reposts inserted one statement each (through the live HNSW indexes, as videos become ready)."""
    return [_insert_video(text=text, picture=picture, hashes=hashes) for _ in range(n)]


def _exact(column: str, video_id: int, k: int) -> list[tuple[int, float]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        cur.execute(
            f"SELECT o.id, 1 - (o.{column} <=> q.{column}) FROM moderation_video o, moderation_video q"
            f" WHERE q.id = %s AND o.id <> q.id AND o.{column} IS NOT NULL ORDER BY o.{column} <=> q.{column}, o.id"
            " LIMIT %s",
            [video_id, k],
        )
        rows = [(int(a), float(b)) for a, b in cur.fetchall()]
        cur.execute("RESET enable_indexscan; RESET enable_bitmapscan")
    return rows


def _recall(found: list[tuple[int, float]], exact: list[tuple[int, float]]) -> float:
    """Share of the exact top k found: every video above the k-th similarity must be there; at the k-th similarity
    (ties, e.g. a farm of identical vectors) any video at it counts."""
    if not exact:
        return 1.0
    tie = exact[-1][1] - 1e-3
    above = {v for v, s in exact if s > exact[-1][1] + 1e-3}
    got = {v for v, _s in found}
    at_tie = sum(1 for v, s in found if v not in above and s >= tie)
    return round((len(above & got) + min(len(exact) - len(above), at_tie)) / len(exact), 3)


OLD_INDEXES = (  # the videos' own HNSW indexes, as before migration 0032 (``--ab``)
    "CREATE INDEX IF NOT EXISTS video_text_embedding_hnsw ON moderation_video USING hnsw (text_embedding"
    " vector_cosine_ops) WITH (m=16, ef_construction=64)",
    "CREATE INDEX IF NOT EXISTS video_visual_embedding_hnsw ON moderation_video USING hnsw (visual_embedding"
    " halfvec_cosine_ops) WITH (m=16, ef_construction=64)",
)


def _ab(video_ids: list[int], source: int | None, old: Any, repeats: int) -> dict[str, Any]:
    """The neighbour statement before migration 0032 (``old``: selectors at ``--ab COMMIT``, over the videos' own
    HNSW indexes) and now, interleaved (which goes first alternates), on the same rows: p50 of each, and whether
    each returns ``source`` first by transcript and among the pictures."""
    from django.db import connection

    from moderation.reproduction import selectors

    arms = {"before": old.video_neighbours_sql, "now": selectors.video_neighbours_sql}
    times: dict[str, list[float]] = {a: [] for a in arms}
    found: dict[str, dict[str, bool]] = {}
    with connection.cursor() as cur:
        for r in range(repeats):
            for i, v in enumerate(video_ids):
                for arm in list(arms) if (r + i) % 2 == 0 else list(arms)[::-1]:
                    sql = arms[arm](video_id=v, channel="video")
                    started = time.perf_counter()
                    cur.execute(sql)
                    cur.nextset()
                    rows = cur.fetchall()
                    times[arm].append((time.perf_counter() - started) * 1000)
                    if source is not None and i == 0:
                        text = [int(x[2]) for x in rows if x[0] == "t"]
                        pictures = [int(x[2]) for x in rows if x[0] == "v"]
                        found[arm] = {"source_first_by_text": bool(text) and text[0] == source,
                                      "source_in_pictures": source in pictures}  # fmt: skip
    return {a: {"p50_ms": round(statistics.median(t), 2), **found.get(a, {})} for a, t in times.items()}


@contextlib.contextmanager
def _every_hit() -> Iterator[None]:
    """Retrieval as before the cap per matched hash (``hash_hits(per_hash=...)``): every hit confirmed and ranked."""
    from moderation.reproduction import selectors

    original = selectors.hash_hits

    def every(**kwargs):  # type: ignore[no-untyped-def]
        return original(**{**kwargs, "per_hash": 0})

    selectors.hash_hits = every  # type: ignore[assignment]
    try:
        yield
    finally:
        selectors.hash_hits = original  # type: ignore[assignment]


def _query(video_id: int, source: int | None, farm: set[int], repeats: int) -> dict[str, Any]:
    from moderation.reproduction import selectors
    from moderation.reproduction.services import TOP_K, VIDEO_K, candidates_retrieve

    times, found = [], {}
    uncapped_times: list[float] = []
    uncapped: dict[int, Any] = {}
    for r in range(repeats):  # the app (the earliest 3 * top_k videos per matched hash) and every hit, interleaved
        for arm in ("capped", "uncapped") if r % 2 == 0 else ("uncapped", "capped"):
            with _every_hit() if arm == "uncapped" else contextlib.nullcontext():
                started = time.perf_counter()
                got = candidates_retrieve(video_id=video_id)
                (times if arm == "capped" else uncapped_times).append((time.perf_counter() - started) * 1000)
            if arm == "capped":
                found = got
            else:
                uncapped = got
    hash_times, hnsw_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        selectors.hash_hits(queries=selectors.hash_queries_of(video_id), exclude_video_id=video_id, per_hash=3 * TOP_K)
        hash_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        n = selectors.video_neighbours(video_id=video_id, k_text=TOP_K, k_videos=VIDEO_K, channel="video")
        hnsw_times.append((time.perf_counter() - started) * 1000)
    exact_text, exact_video = _exact("text_embedding", video_id, TOP_K), _exact("visual_embedding", video_id, VIDEO_K)
    from django.db import connection

    with connection.cursor() as cur:  # the planner's choice: the HNSW indexes, not a sequential scan and a sort
        cur.execute("EXPLAIN " + selectors.video_neighbours_sql(video_id=video_id, channel="video").split(";", 1)[1])
        plan = "\n".join(r[0] for r in cur.fetchall())
    out: dict[str, Any] = {
        "hnsw_used": sorted(set(re.findall(r"\w+_hnsw\b", plan))),
        "p50_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
        "uncapped_p50_ms": round(statistics.median(uncapped_times), 1), "uncapped_max_ms": round(max(uncapped_times), 1),
        "hash_hits": sum(len(ev["hash_hits"]) for ev in found.values()),
        "uncapped_hash_hits": sum(len(ev["hash_hits"]) for ev in uncapped.values()),
        "same_top": list(found)[:1] == list(uncapped)[:1],
        "hash_p50_ms": round(statistics.median(hash_times), 1), "hnsw_p50_ms": round(statistics.median(hnsw_times), 1),
        "text_returned": len(n.text), "text_recall": _recall(n.text, exact_text),
        "video_returned": len(n.videos), "video_recall": _recall(n.videos, exact_video),
        "farm_in_text": sum(v in farm for v, _ in n.text), "farm_in_video": sum(v in farm for v, _ in n.videos),
        "candidates": len(found), "farm_in_candidates": sum(v in farm for v in found),
    }  # fmt: skip
    if source is not None:
        out |= {
            "source_in_candidates": source in found, "source_text_rank": [v for v, _ in n.text].index(source)
            if source in [v for v, _ in n.text] else None, "source_in_video": source in [v for v, _ in n.videos],
            "source_exact_text_rank": [v for v, _ in exact_text].index(source)
            if source in [v for v, _ in exact_text] else None,
            "source_exact_video_rank": [v for v, _ in exact_video].index(source)
            if source in [v for v, _ in exact_video] else None,
        }  # fmt: skip
    return out


def _state(args: argparse.Namespace, n_dups: int, rng) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import numpy as np
    from django.db import connection
    from repro_retrieval import _bits, _fill, _library, _reindex, _transformed

    with connection.cursor() as cur:
        cur.execute("TRUNCATE moderation_video, moderation_framehash, moderation_keyframe CASCADE")
        for table in ("moderation_video", "moderation_framehash", "moderation_keyframe"):
            cur.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    lib_args = argparse.Namespace(hashes=8, frames=8)
    lib = _library(args.library, lib_args, rng)
    library_ids = _fill(args.library, lib, lib_args)
    _reindex(False)
    if args.ab:
        with connection.cursor() as cur:
            for sql in OLD_INDEXES:
                cur.execute(sql)
    from moderation.reproduction import pdq_index

    text_farm = _unit(rng.standard_normal(384))
    frames = rng.standard_normal((8, 512)).astype(np.float32)
    picture_farm = _unit(frames.mean(axis=0))
    hashes_farm = _bits(rng.integers(0, 256, size=(8, 32), dtype=np.uint8))
    source_codes = rng.integers(0, 256, size=(8, 32), dtype=np.uint8)
    text_source = _near(text_farm, 0.95, rng)
    src_frames = frames + 0.5 * rng.standard_normal(frames.shape).astype(np.float32)
    picture_source = _unit(src_frames.mean(axis=0))
    copy_frames = _transformed(src_frames, "reencode", rng, {})
    near = source_codes.copy()
    for row in near:
        bits = np.unpackbits(row)
        bits[rng.choice(256, size=int(rng.integers(10, 32)), replace=False)] ^= 1
        row[:] = np.packbits(bits)

    started = time.perf_counter()
    farm = _farm(n_dups, text_farm, picture_farm, hashes_farm)
    farm_insert_s = time.perf_counter() - started
    source = _insert_video(text=text_source, picture=picture_source, hashes=_bits(source_codes))
    copy = _insert_video(
        text=_near(text_source, 0.99, rng), picture=_unit(copy_frames.mean(axis=0)), hashes=_bits(near)
    )
    repost = _insert_video(text=text_farm, picture=picture_farm, hashes=hashes_farm)
    pdq_index.reload()
    for _ in range(3):  # warm
        for q in (copy, repost):
            from moderation.reproduction.services import candidates_retrieve

            candidates_retrieve(video_id=q)
    farm_set = set(farm)
    result: dict[str, Any] = {"dups": n_dups, "farm_insert_ms_each": round(farm_insert_s * 1000 / max(1, n_dups), 2)}
    result["clean"] = {
        "copy": _query(copy, source, farm_set, args.repeats),
        "repost": _query(repost, None, farm_set, args.repeats),
    }
    others = [library_ids[int(i)] for i in rng.choice(args.library, size=20, replace=False)]  # ordinary videos
    if args.ab:
        result["clean"]["ab"] = {
            "copy": _ab([copy], source, args.old, args.repeats),
            "repost": _ab([repost], None, args.old, args.repeats),
            "library": _ab(others, None, args.old, max(1, args.repeats // 2)),
        }
    if args.dead:
        # The farm taken down and reposted again (dead entries of identical vectors in the graph), then every video's
        # embeddings rewritten twice (two full rebuilds), no vacuum.
        with connection.cursor() as cur:
            cur.execute("DELETE FROM moderation_framehash WHERE video_id = ANY(%s)", [farm])
            cur.execute("DELETE FROM moderation_video WHERE id = ANY(%s)", [farm])
        farm_set = set(_farm(n_dups, text_farm, picture_farm, hashes_farm))
        with connection.cursor() as cur:
            for _ in range(2):
                cur.execute(
                    "UPDATE moderation_video SET visual_embedding = visual_embedding, text_embedding = text_embedding,"
                    " updated_at = now()"
                )
            cur.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'moderation_video'")
            dead = cur.fetchone()[0]
        pdq_index.reload()
        result["dead"] = {
            "dead_tuples": int(dead),
            "copy": _query(copy, source, farm_set, args.repeats), "repost": _query(repost, None, farm_set, args.repeats),
        }  # fmt: skip
        if args.ab:
            result["dead"]["ab"] = {
                "copy": _ab([copy], source, args.old, args.repeats),
                "library": _ab(others, None, args.old, max(1, args.repeats // 2)),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", type=int, default=3000)
    parser.add_argument("--dups", default="50,200,1000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dead", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef-search", type=int, help="hnsw.ef_search (default: settings.REPRO_HNSW_EF_SEARCH)")
    parser.add_argument(
        "--ab",
        metavar="COMMIT",
        help="also time the neighbour statement of selectors.py at COMMIT (before migration 0032: the videos' own HNSW "
        "indexes, built here too) against today's, interleaved, on the same library",
    )
    args = parser.parse_args()
    django_setup()
    args.old = module_at(args.ab, "moderation/reproduction/selectors.py") if args.ab else None
    import os

    import numpy as np
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    settings.REPRO_NEIGHBOURS_PARALLEL = True
    if args.ef_search:
        settings.REPRO_HNSW_EF_SEARCH = args.ef_search
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_repro_duplicates"
    config = setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=[])
    rng = np.random.default_rng(args.seed)
    runs = []
    try:
        for n in (int(x) for x in args.dups.split(",")):
            runs.append(_state(args, n, rng))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        from moderation.reproduction import side_connection

        side_connection.close()  # before dropping the database they are connected to
        connection.close()
        teardown_databases(config, verbosity=0)
    print(json.dumps({"library": args.library, "loadavg": [round(x, 2) for x in os.getloadavg()], "runs": runs}))


if __name__ == "__main__":
    main()
