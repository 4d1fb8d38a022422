"""The embedding-neighbours stage of reproduction retrieval, in several forms side by side, at 1k and 200k videos.

Runs against the libraries a ``bench/repro_retrieval.py --small 1000 --large 200000 --keep`` run left behind (both
databases; the same 40 planted query videos). Each arm finds, for one query video, its ``VIDEO_K`` nearest other
videos by picture (``Video.visual_embedding``) and its ``TOP_K`` nearest transcripts; arms and libraries are
interleaved per query (which goes first rotates), so load from other processes falls on all alike. Per arm: p50 /
p99 wall time of the stage as the app would see it (client side, one round trip unless said), its ratio 200k / 1k,
and how often each channel alone holds the source above the candidate thresholds (``VIDEO_SIM_MIN``,
``TEXT_SIM_MIN``).

Arms:
  ``current``  the app's statement (``selectors.video_neighbours_sql``, channel video): both HNSW scans, one statement
  ``ef20``     the same with ``hnsw.ef_search`` 20
  ``video``    the picture scan alone; ``text`` the transcript scan alone (to split the cost)
  ``parallel`` the two scans at once on two connections (two backends; threads wait on the sockets)
  ``bq``       both channels through HNSW indexes over the sign bits (``binary_quantize``, Hamming), the
               ``--oversample`` nearest re-ranked by the exact cosine (needs the ``bq`` indexes: ``--build``)
  ``text_half``     the transcript scan through an HNSW index of the transcripts as ``halfvec`` (an expression
                    index beside the app's; ``--build``), as the picture vectors are stored
  ``text_half_m8``  the same with ``m`` 8 instead of 16 (over ``l2_normalize(...)``, so that the planner cannot
                    take the other one: the same order under cosine)
  ``text_m8``       the transcript scan through an ``m`` 8 index of the float vectors (``l2_normalize(...)``)
  ``video_m8``      the picture scan through an ``m`` 8 index (``l2_normalize(visual_embedding)``)

``--exact N``: each single-channel arm's neighbours against the exact ones (a sequential scan, float vectors) for
the planted queries and ``N`` random library videos: the mean share of the exact top ``TOP_K`` / ``VIDEO_K`` found.

    .venv/bin/python bench/repro_neighbours_arms.py --shared-buffers 2GB [--arms current,ef20,parallel,bq] [--build]

Since migration 0032 the app's scans walk the distinct vectors (``TranscriptVector``, ``PictureVector``); the arms
other than ``current`` keep their statements over the videos' own columns, whose HNSW indexes are gone (they
measured the choice made before it).

The last line printed is one JSON object (``ratio``: the best arm's 200k / 1k p50 ratio; per arm the details).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.repro_neighbours_arms``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

BQ_INDEXES = {
    "video_visual_bq_hnsw": "CREATE INDEX IF NOT EXISTS video_visual_bq_hnsw ON moderation_video USING hnsw "
    "((binary_quantize(visual_embedding)::bit(512)) bit_hamming_ops) WITH (m=16, ef_construction=64)",
    "video_text_bq_hnsw": "CREATE INDEX IF NOT EXISTS video_text_bq_hnsw ON moderation_video USING hnsw "
    "((binary_quantize(text_embedding)::bit(384)) bit_hamming_ops) WITH (m=16, ef_construction=64)",
}
VARIANT_INDEXES = {
    "text_half": "CREATE INDEX IF NOT EXISTS video_text_half_hnsw ON moderation_video USING hnsw "
    "((text_embedding::halfvec(384)) halfvec_cosine_ops) WITH (m=16, ef_construction=64)",
    "text_half_m8": "CREATE INDEX IF NOT EXISTS video_text_half_m8_hnsw ON moderation_video USING hnsw "
    "((l2_normalize(text_embedding::halfvec(384))::halfvec(384)) halfvec_cosine_ops) WITH (m=8, ef_construction=64)",
    "text_m8": "CREATE INDEX IF NOT EXISTS video_text_m8_hnsw ON moderation_video USING hnsw "
    "((l2_normalize(text_embedding)::vector(384)) vector_cosine_ops) WITH (m=8, ef_construction=64)",
    "video_m8": "CREATE INDEX IF NOT EXISTS video_visual_m8_hnsw ON moderation_video USING hnsw "
    "((l2_normalize(visual_embedding)::halfvec(512)) halfvec_cosine_ops) WITH (m=8, ef_construction=64)",
}
VARIANT_SCANS = {
    "text_half": ("t", "text_embedding::halfvec(384)"),
    "text_half_m8": ("t", "l2_normalize(text_embedding::halfvec(384))::halfvec(384)"),
    "text_m8": ("t", "l2_normalize(text_embedding)::vector(384)"),
    "video_m8": ("v", "l2_normalize(visual_embedding)::halfvec(512)"),
}
VARIANT = """SELECT '{kind}', n.id, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT id, 1 - ({col} <=> {qcol}) AS sim FROM moderation_video
    WHERE {col} IS NOT NULL AND id <> {v} ORDER BY {col} <=> {qcol} LIMIT {k}
) n WHERE q.id = {v} AND {qcol} IS NOT NULL"""
SETTINGS = (
    "SELECT set_config('hnsw.ef_search', '{ef}', true), set_config('hnsw.iterative_scan', 'relaxed_order', true);"
)
VIDEO = """SELECT 'v', n.id, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT id, 1 - (visual_embedding <=> q.visual_embedding) AS sim FROM moderation_video
    WHERE visual_embedding IS NOT NULL AND id <> {v} ORDER BY visual_embedding <=> q.visual_embedding LIMIT {kv}
) n WHERE q.id = {v} AND q.visual_embedding IS NOT NULL"""
TEXT = """SELECT 't', n.id, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT id, 1 - (text_embedding <=> q.text_embedding) AS sim FROM moderation_video
    WHERE text_embedding IS NOT NULL AND id <> {v} ORDER BY text_embedding <=> q.text_embedding LIMIT {kt}
) n WHERE q.id = {v} AND q.text_embedding IS NOT NULL"""
BQ_VIDEO = """SELECT 'v', n.id, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT id, 1 - (visual_embedding <=> q.visual_embedding) AS sim FROM (
        SELECT id, visual_embedding FROM moderation_video WHERE visual_embedding IS NOT NULL AND id <> {v}
        ORDER BY binary_quantize(visual_embedding)::bit(512) <~> binary_quantize(q.visual_embedding) LIMIT {over}
    ) c ORDER BY visual_embedding <=> q.visual_embedding LIMIT {kv}
) n WHERE q.id = {v} AND q.visual_embedding IS NOT NULL"""
BQ_TEXT = """SELECT 't', n.id, n.sim FROM moderation_video q CROSS JOIN LATERAL (
    SELECT id, 1 - (text_embedding <=> q.text_embedding) AS sim FROM (
        SELECT id, text_embedding FROM moderation_video WHERE text_embedding IS NOT NULL AND id <> {v}
        ORDER BY binary_quantize(text_embedding)::bit(384) <~> binary_quantize(q.text_embedding) LIMIT {over}
    ) c ORDER BY text_embedding <=> q.text_embedding LIMIT {kt}
) n WHERE q.id = {v} AND q.text_embedding IS NOT NULL"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _run_sql(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = []
        while True:
            if cur.description is not None and cur.pgresult is not None:
                rows = cur.fetchall()  # the last result set: the neighbours (the first is the settings' row)
            if not cur.nextset():
                break
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="current,ef20,video,text,parallel,bq")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm", type=int, default=300, help="untimed look-ups of random library videos per arm")
    parser.add_argument("--oversample", type=int, default=40, help="bq: Hamming neighbours re-ranked by cosine")
    parser.add_argument("--ef-search", type=int, default=40)
    parser.add_argument("--build", action="store_true", help="build the bq indexes where missing (both libraries)")
    parser.add_argument("--drop", action="store_true", help="drop the bq and variant indexes afterwards")
    parser.add_argument("--exact", type=int, default=0, help="neighbour recall against exact search: N more videos")
    parser.add_argument("--shared-buffers", help="as bench/repro_retrieval.py's (e.g. 2GB; reset afterwards)")
    args = parser.parse_args()
    django_setup()
    from repro_retrieval import shared_buffers

    with shared_buffers(args.shared_buffers):
        _arms(args)


def _arms(args: argparse.Namespace) -> None:
    import psycopg
    from django.db import connection

    from moderation.reproduction.selectors import video_neighbours_sql
    from moderation.reproduction.services import TEXT_SIM_MIN, TOP_K, VIDEO_K, VIDEO_SIM_MIN

    arms = args.arms.split(",")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    conns: dict[str, list[Any]] = {}
    queries: dict[str, list[tuple[int, int]]] = {}
    built: dict[str, dict[str, float]] = {}
    for name, db in (("small", "bench_repro_retrieval_200000_small"), ("large", "bench_repro_retrieval_200000")):
        conns[name] = [psycopg.connect(**{**params, "dbname": db}, autocommit=True) for _ in range(2)]
        meta = _run_sql(conns[name][0], "SELECT prepared FROM bench_meta")[0][0]
        meta = meta if isinstance(meta, dict) else json.loads(meta)
        queries[name] = [(int(q), int(s)) for q, s in meta["queries"]]
        wanted = {a: VARIANT_INDEXES[a] for a in arms if a in VARIANT_INDEXES}
        with conns[name][0].cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            for sql in wanted.values():
                index = sql.split()[5]
                cur.execute("SELECT to_regclass(%s) IS NOT NULL", [index])
                if not cur.fetchone()[0]:
                    if not args.build:
                        raise SystemExit(f"{index} missing in {db}: run with --build")
                    t0 = time.perf_counter()
                    cur.execute(sql)
                    built.setdefault(name, {})[index] = round(time.perf_counter() - t0, 1)
                cur.execute("SELECT pg_relation_size(%s)", [index])
                built.setdefault(name, {})[f"{index}_bytes"] = cur.fetchone()[0]
        if "bq" in arms:
            with conns[name][0].cursor() as cur:
                cur.execute("SET maintenance_work_mem = '1GB'")
                for index, sql in BQ_INDEXES.items():
                    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [index])
                    if not cur.fetchone()[0]:
                        if not args.build:
                            raise SystemExit(f"{index} missing in {db}: run with --build")
                        t0 = time.perf_counter()
                        cur.execute(sql)
                        built.setdefault(name, {})[index] = round(time.perf_counter() - t0, 1)
                cur.execute(
                    "SELECT "
                    + ", ".join(f"pg_relation_size('{i}')" for i in BQ_INDEXES)
                    + ", pg_relation_size('picture_vector_hnsw'), pg_relation_size('transcript_vector_hnsw')"
                )
                built.setdefault(name, {})["bytes"] = list(cur.fetchone())  # type: ignore[assignment]

    def sql_for(arm: str, v: int) -> list[str]:
        """The statements of an arm (more than one: sent at once on separate connections)."""
        k = {"v": v, "kv": VIDEO_K, "kt": TOP_K, "over": max(args.oversample, VIDEO_K)}
        ef = args.ef_search
        if arm == "current":
            return [video_neighbours_sql(video_id=v, k_text=TOP_K, k_videos=VIDEO_K, channel="video")]
        if arm == "ef20":
            return [SETTINGS.format(ef=20) + "\n" + "\nUNION ALL\n".join([VIDEO, TEXT]).format(**k)]
        if arm == "video":
            return [SETTINGS.format(ef=ef) + "\n" + VIDEO.format(**k)]
        if arm == "text":
            return [SETTINGS.format(ef=ef) + "\n" + TEXT.format(**k)]
        if arm in {"parallel", "parallel_send"}:
            return [SETTINGS.format(ef=ef) + "\n" + VIDEO.format(**k), SETTINGS.format(ef=ef) + "\n" + TEXT.format(**k)]
        if arm == "ef20_send":
            return [SETTINGS.format(ef=20) + "\n" + VIDEO.format(**k), SETTINGS.format(ef=20) + "\n" + TEXT.format(**k)]
        if arm in VARIANT_SCANS:
            kind, col = VARIANT_SCANS[arm]
            qcol = col.replace("text_embedding", "q.text_embedding").replace("visual_embedding", "q.visual_embedding")
            limit = k["kt"] if kind == "t" else k["kv"]
            return [SETTINGS.format(ef=ef) + "\n" + VARIANT.format(kind=kind, col=col, qcol=qcol, v=v, k=limit)]
        if arm == "bq":
            over = max(ef, k["over"])
            return [SETTINGS.format(ef=over) + "\n" + "\nUNION ALL\n".join([BQ_VIDEO, BQ_TEXT]).format(**k)]
        raise SystemExit(f"unknown arm {arm}")

    def run(name: str, arm: str, v: int) -> list[tuple[Any, ...]]:
        statements = sql_for(arm, v)
        if len(statements) == 1:
            return _run_sql(conns[name][0], statements[0])
        if arm.endswith("_send"):  # libpq's asynchronous send on the second connection, no thread
            side = conns[name][1].pgconn
            side.send_query(statements[1].encode())
            rows = _run_sql(conns[name][0], statements[0])
            last = None
            while (res := side.get_result()) is not None:
                last = res
            assert last is not None and last.status == 2, last and last.error_message
            rows += [
                (last.get_value(i, 0).decode(), int(last.get_value(i, 1)), float(last.get_value(i, 2)))
                for i in range(last.ntuples)
            ]
            return rows
        out: list[list[tuple[Any, ...]]] = [[], []]

        def second() -> None:
            out[1] = _run_sql(conns[name][1], statements[1])

        worker = threading.Thread(target=second)
        worker.start()
        out[0] = _run_sql(conns[name][0], statements[0])
        worker.join()
        return out[0] + out[1]

    loads = {"start": [round(x, 2) for x in os.getloadavg()]}
    for name in ("small", "large"):  # warm: the HNSW pages into the buffer cache (after a restart they are not)
        warm_ids = [
            r[0]
            for r in _run_sql(conns[name][0], f"SELECT id FROM moderation_video ORDER BY random() LIMIT {args.warm}")
        ]
        for arm in arms:
            for v in warm_ids:
                run(name, arm, v)
            for q, _s in queries[name]:
                run(name, arm, q)
    loads["measured_from"] = [round(x, 2) for x in os.getloadavg()]
    times = {a: {"small": [], "large": []} for a in arms}  # type: dict[str, dict[str, list[float]]]
    found = {a: {n: {"v": 0, "t": 0} for n in ("small", "large")} for a in arms}
    cells = [(a, n) for a in arms for n in ("small", "large")]
    for r in range(args.rounds):
        for i in range(len(queries["small"])):
            shift = (r * len(queries["small"]) + i) % len(cells)
            for arm, name in cells[shift:] + cells[:shift]:
                qid, source = queries[name][i]
                t0 = time.perf_counter()
                rows = run(name, arm, qid)
                times[arm][name].append((time.perf_counter() - t0) * 1000)
                bars = {"v": VIDEO_SIM_MIN, "t": TEXT_SIM_MIN}
                for kind in ("v", "t"):
                    found[arm][name][kind] += any(
                        row[0] == kind and row[-2 if len(row) == 3 else 2] == source and row[-1] >= bars[kind]
                        for row in rows
                    )
    loads["end"] = [round(x, 2) for x in os.getloadavg()]
    n = args.rounds * len(queries["small"])
    report: dict[str, Any] = {}
    for arm in arms:
        s, lg = times[arm]["small"], times[arm]["large"]
        report[arm] = {
            "ratio": round(statistics.median(lg) / statistics.median(s), 3),
            "small_p50_ms": round(statistics.median(s), 2), "large_p50_ms": round(statistics.median(lg), 2),
            "small_p99_ms": round(_pct(s, 0.99), 2), "large_p99_ms": round(_pct(lg, 0.99), 2),
            "large_p25_p75_ms": [round(_pct(lg, 0.25), 2), round(_pct(lg, 0.75), 2)],
            "recall_video": {nm: round(found[arm][nm]["v"] / n, 3) for nm in ("small", "large")},
            "recall_text": {nm: round(found[arm][nm]["t"] / n, 3) for nm in ("small", "large")},
        }  # fmt: skip
        print(json.dumps({arm: report[arm]}), flush=True)
    exact: dict[str, Any] = {}
    if args.exact:
        exact = _exact_recall(args, arms, conns, queries, run)
        print(json.dumps({"exact_recall": exact}), flush=True)
    if args.drop:
        for name in ("small", "large"):
            with conns[name][0].cursor() as cur:
                for index in [*BQ_INDEXES, *(sql.split()[5] for sql in VARIANT_INDEXES.values())]:
                    cur.execute(f"DROP INDEX IF EXISTS {index}")
    for pair in conns.values():
        for c in pair:
            c.close()
    best = min(report, key=lambda a: report[a]["ratio"])
    print(json.dumps({"ratio": report[best]["ratio"], "best_arm": best, "arms": report, "indexes_built": built,
                      "exact_recall": exact,
                      "loadavg": loads, "rounds": args.rounds, "queries": len(queries["small"]),
                      "oversample": args.oversample, "ef_search": args.ef_search}))  # fmt: skip


def _exact_recall(args: argparse.Namespace, arms: list[str], conns: Any, queries: Any, run: Any) -> dict[str, Any]:
    """Per single-channel arm and library: the mean share of the exact nearest neighbours (a sequential scan over
    the float vectors; ``TOP_K`` transcripts, ``VIDEO_K`` pictures) that the arm's scan returns."""
    from moderation.reproduction.services import TOP_K, VIDEO_K

    channel = {"video": "v", "video_m8": "v", "text": "t", "text_half": "t", "text_half_m8": "t", "text_m8": "t"}
    column = {"v": ("visual_embedding", VIDEO_K), "t": ("text_embedding", TOP_K)}
    kinds = {channel[a] for a in arms if a in channel}
    out: dict[str, Any] = {}
    for name in ("small", "large"):
        conn = conns[name][1]
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM moderation_video ORDER BY random() LIMIT {int(args.exact)}")
            videos = [q for q, _s in queries[name]] + [r[0] for r in cur.fetchall()]
        truth: dict[tuple[str, int], set[int]] = {}
        for v in videos:
            for kind in kinds:
                col, k = column[kind]
                rows = _run_sql(
                    conn,
                    "SELECT set_config('enable_indexscan', 'off', false), set_config('enable_bitmapscan', 'off', false);"
                    f"SELECT n.id FROM moderation_video q CROSS JOIN LATERAL (SELECT id FROM moderation_video "
                    f"WHERE {col} IS NOT NULL AND id <> {v} ORDER BY {col} <=> q.{col} LIMIT {k}) n WHERE q.id = {v}",
                )
                truth[(kind, v)] = {int(r[0]) for r in rows}
        _run_sql(conn, "RESET enable_indexscan; RESET enable_bitmapscan")
        for arm in arms:
            kind = channel.get(arm)
            if kind is None:
                continue
            shares = []
            for v in videos:
                got = {int(r[1]) for r in run(name, arm, v) if r[0] == kind}
                if truth[(kind, v)]:
                    shares.append(len(got & truth[(kind, v)]) / len(truth[(kind, v)]))
            out.setdefault(arm, {})[name] = round(statistics.mean(shares), 3)
    return out


if __name__ == "__main__":
    main()
