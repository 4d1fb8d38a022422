"""Chunk layouts of the in-process PDQ multi-index side by side: does a longer chunk (fewer candidates to verify
per probe, more probes) cut the look-up's growth from a small to a large library? One run, queries interleaved.

    .venv/bin/python bench/pdq_layouts.py [--small 8000] [--large 1600000] [--videos 200] [--layouts 12x21 11x23]
        [--baseline COMMIT]  # also each layout as ``hamming.py`` was at COMMIT (e.g. before the prefilter), interleaved

Sizes count hashes (a video has 8; 1.6M = 200k videos). Each query is what ``candidates_retrieve`` searches for a
video: 16 hashes (8 seconds, each a planted copy of a library hash 10-31 bits off, and their 8 flipped hashes,
unrelated here), threshold 31. Every layout is exact (the pigeonhole radii of ``hamming.chunk_radii``), so the
hits must agree; the report gives per layout and size p50 / p99 ms per query video, the index's bytes (with the
bucket offsets: chunks x 2^bits x 4 B) and the candidates verified per query video. The last line is one JSON
object: ``ratio`` is p50 at large / at small of the first layout (the one in use), then every layout's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.pdq_layouts``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, module_at  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=8000)
    parser.add_argument("--large", type=int, default=1_600_000)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layouts", nargs="+", default=["12x21", "11x23"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", help="a commit: its moderation/reproduction/hamming.py, timed beside the current")
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.reproduction.hamming import MultiIndex, chunk_radii

    classes = {"": MultiIndex}
    if args.baseline:
        classes["@" + args.baseline] = module_at(args.baseline, "moderation/reproduction/hamming.py").MultiIndex

    rng = np.random.default_rng(args.seed)
    library = rng.integers(0, 256, size=(args.large, 32), dtype=np.uint8)
    layouts = [(*(int(x) for x in layout.split("x")), tag) for layout in args.layouts for tag in classes]
    indexes = {}
    for chunks, bits, tag in layouts:
        for name, size in (("small", args.small), ("large", args.large)):
            index = classes[tag](chunks=chunks, chunk_bits=bits)
            for start in range(0, size, 200_000):
                stop = min(size, start + 200_000)
                index.add(library[start:stop], np.arange(start, stop), np.arange(start, stop) // 8)
            index.merge()
            indexes[(chunks, bits, tag, name)] = index
    queries = []
    for _ in range(args.videos):
        source = rng.integers(0, args.small // 8) * 8
        near = library[source : source + 8].copy()
        for row in near:
            bits = np.unpackbits(row)
            bits[rng.choice(256, size=int(rng.integers(10, 32)), replace=False)] ^= 1
            row[:] = np.packbits(bits)
        queries.append(np.concatenate([near, rng.integers(0, 256, size=(8, 32), dtype=np.uint8)]))
    times: dict[tuple[int, int, str, str], list[float]] = {key: [] for key in indexes}
    hits: dict[tuple[int, int, str, str], int] = dict.fromkeys(indexes, 0)
    keys = list(indexes)
    load = [round(x, 2) for x in os.getloadavg()]
    for r in range(args.rounds):
        for q in queries:
            for key in keys if r % 2 == 0 else keys[::-1]:
                t0 = time.perf_counter()
                found = indexes[key].search(q, 31)
                times[key].append((time.perf_counter() - t0) * 1000)
                if r == 0:
                    hits[key] += len(found.ids)
    report = {}
    for chunks, bits, tag in layouts:
        radii = chunk_radii(31, chunks)
        probes = sum(sum(_choose(bits, k) for k in range(r + 1)) for r in radii)
        row = {"probes_per_hash": probes}
        for name, size in (("small", args.small), ("large", args.large)):
            key = (chunks, bits, tag, name)
            t = sorted(times[key])
            row[name] = {"p50_ms": round(statistics.median(t), 3), "p99_ms": round(t[int(0.99 * (len(t) - 1))], 3),
                         "bytes": indexes[key].nbytes(), "hits": hits[key],
                         "candidates_per_query_video": round(16 * probes * size / 2**bits)}  # fmt: skip
        row["ratio"] = round(row["large"]["p50_ms"] / row["small"]["p50_ms"], 3)
        report[f"{chunks}x{bits}{tag}"] = row
        print(json.dumps({f"{chunks}x{bits}{tag}": row}), flush=True)
    first = report[args.layouts[0]]
    print(json.dumps({"ratio": first["ratio"], "layouts": report, "small": args.small, "large": args.large,
                      "query_videos": args.videos, "rounds": args.rounds,
                      "loadavg": {"start": load, "end": [round(x, 2) for x in os.getloadavg()]}}))  # fmt: skip


def _choose(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


if __name__ == "__main__":
    main()
