"""Meta's vPDQ (pip ``vpdq``) against our per-second PDQ signature, on planted transformed copies.

Every demo script is rendered as a source clip with its own look (as ``generate_repro_eval`` does), and
every source gets one copy per transform (re-encode, crop, mirror, speed +-10 %, overlay text, trim:
reproductions; picture-in-picture, new narration: derivatives). Each video is hashed both ways, timed:

- ours: the media pipeline's 1 fps thumbnails (``extract_keyframes``, 320 px wide) hashed with ``pdqhash``,
  plus the hash of each flipped thumbnail (what the PDQ index stores as ``hash_mirror``);
- vPDQ: ``vpdq.computeHash(path, seconds_per_hash=1)`` (libav decode, PDQ of the full-size frame).

Then every copy is compared with its own source (truth: reproduction or derivative) and with every other
source (truth: unrelated) under three rules, on both hash sets:

- ``retrieved``: some second of the copy within 31 bits of some second of the source (what puts the
  source among the candidates: the multi-index look-up finds exactly these);
- ``aligned_half``: our alignment (offset, speed, mirror) covers at least half of either video's seconds
  (the hash part of the pair queue's threshold: 0.6 x coverage >= 0.3);
- ``vpdq_rule``: vPDQ's own similarity: frames of quality >= 50, unique hashes, a frame matches when some
  frame of the other video is within 31 bits; query (copy) match % >= 75 and compared % >= 0 (the
  defaults of Meta's python-threatexchange; 80 % in its older releases, also reported).

Nothing is tuned: every threshold is the one named above. ``ratio`` is vPDQ's hashing time per video
÷ ours (median). The last line printed is one JSON object.

    .venv/bin/python bench/vpdq_compare.py [--scripts 6] [--min-seconds 6] [--max-seconds 10]

Needs ``vpdq`` (not a project dependency: the measurement kept our signature; install line printed if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")

DISTANCE = 31
QUALITY = 50
QUERY_PERCENT = 75.0
QUERY_PERCENT_OLD = 80.0
COMPARED_PERCENT = 0.0

Hashes = list[tuple[float, str, int]]  # (seconds, 64 hex digits, PDQ quality)


def hash_ours(path: Path, work: Path) -> tuple[Hashes, Hashes]:
    """The pipeline's 1 fps thumbnails, their PDQ hashes and the hashes of the flipped thumbnails."""
    import numpy as np

    from moderation.media import analyzers, extractors

    frames = extractors.extract_keyframes(
        path, work, fps=1.0, width=320, duration=extractors.probe(path).duration or 0.0
    )
    plain: Hashes = []
    mirrored: Hashes = []
    for f in frames:
        rgb = analyzers.load_rgb(f.path)
        h, q = analyzers.pdq_of(rgb)
        hm, qm = analyzers.pdq_of(np.ascontiguousarray(rgb[:, ::-1, :]))
        plain.append((f.timestamp, h, q))
        mirrored.append((f.timestamp, hm, qm))
    return plain, mirrored


def hash_vpdq(path: Path) -> Hashes:
    import vpdq  # checked in main()

    return [
        (float(f.timestamp), f.hex, int(f.quality))
        for f in vpdq.computeHash(str(path), seconds_per_hash=1, thread_count=1)
    ]


def _unique(hashes: Hashes) -> list[int]:
    return sorted({int(h, 16) for _t, h, q in hashes if q >= QUALITY})


def vpdq_percentages(query: Hashes, compared: Hashes) -> tuple[float, float]:
    """vPDQ's similarity: the share (%) of each side's unique good-quality hashes with a match on the other."""
    a, b = _unique(query), _unique(compared)
    if not a or not b:
        return 0.0, 0.0
    q = sum(any((x ^ y).bit_count() <= DISTANCE for y in b) for x in a)
    c = sum(any((x ^ y).bit_count() <= DISTANCE for x in a) for y in b)
    return 100.0 * q / len(a), 100.0 * c / len(b)


def judge(copy: Hashes, copy_mirrored: Hashes, source: Hashes) -> dict[str, bool]:
    from moderation.reproduction import matching

    plain = [(t, h) for t, h, _q in copy]
    flipped = [(t, h) for t, h, _q in copy_mirrored]
    orig = [(t, h) for t, h, _q in source]
    alignment = matching.align(plain, orig, copy_mirrored=flipped)
    q, c = vpdq_percentages(copy, source)
    if copy_mirrored:  # the flipped frames are a second query, as the index does with hash_mirror
        qm, cm = vpdq_percentages(copy_mirrored, source)
        q, c = max((q, c), (qm, cm))
    return {
        "retrieved": alignment.matched_seconds > 0,
        "aligned_half": max(alignment.coverage_copy, alignment.coverage_original) >= 0.5,
        "vpdq_rule": q >= QUERY_PERCENT and c >= COMPARED_PERCENT,
        "vpdq_rule_80": q >= QUERY_PERCENT_OLD and c >= COMPARED_PERCENT,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scripts", type=int, default=6, help="demo scripts rendered as sources (at most 6)")
    parser.add_argument("--min-seconds", type=float, default=6.0)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None, help="keep the clips here (default: a temporary folder)")
    args = parser.parse_args()

    try:
        import vpdq  # noqa: F401
    except ImportError:
        sys.exit(
            "vpdq is not installed (it is not a project dependency). Install it with: apt-get install libavcodec-dev "
            "libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev libswresample-dev pkg-config "
            "g++ && .venv/bin/pip install vpdq==0.2.5"
        )
    import django

    django.setup()
    from moderation.management.commands.generate_repro_eval import LOOKS, _look
    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.reproduction import transforms

    out = args.out or Path(tempfile.mkdtemp(prefix="vpdq-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    videos: list[dict[str, Any]] = []
    for i, script in enumerate(DEMO_SCRIPTS[: args.scripts]):
        raw = synthesize_video(
            out / f"{script.slug}-raw.mp4", title=script.title, speech=script.speech, on_screen=script.on_screen,
            size=(320, 180), min_seconds=args.min_seconds, max_seconds=args.max_seconds,
        )  # fmt: skip
        source = _look(raw, out / f"{script.slug}.mp4", LOOKS[i % len(LOOKS)])
        videos.append({"family": script.slug, "kind": "source", "path": source})
        for t in transforms.TRANSFORMS:
            copy = transforms.apply(t.name, source, out / f"{script.slug}--{t.name}.mp4")
            videos.append({"family": script.slug, "kind": t.name, "label": t.label, "path": copy})
    print(f"{len(videos)} clips in {out}", file=sys.stderr, flush=True)

    times: dict[str, list[float]] = {"ours": [], "vpdq": []}
    for n, v in enumerate(videos):
        # Interleaved, alternating which goes first, so load from other processes hits both alike.
        order = ("ours", "vpdq") if n % 2 == 0 else ("vpdq", "ours")
        for method in order:
            t0 = time.perf_counter()
            if method == "ours":
                with tempfile.TemporaryDirectory(prefix="kf-") as tmp:
                    v["ours"], v["ours_mirrored"] = hash_ours(v["path"], Path(tmp))
            else:
                v["vpdq"] = hash_vpdq(v["path"])
            times[method].append(time.perf_counter() - t0)

    sources = {v["family"]: v for v in videos if v["kind"] == "source"}
    copies = [v for v in videos if v["kind"] != "source"]
    outcomes: dict[str, dict[str, list[bool]]] = {}  # "hashes/rule" -> truth class -> decisions
    per_transform: dict[str, dict[str, list[bool]]] = {}
    for copy in copies:
        for family, source in sources.items():
            truth = copy["label"] if family == copy["family"] else "unrelated"
            for hashes in ("ours", "vpdq"):
                mirrored = copy["ours_mirrored"] if hashes == "ours" else []
                for rule, decision in judge(copy[hashes], mirrored, source[hashes]).items():
                    outcomes.setdefault(f"{hashes}/{rule}", {}).setdefault(truth, []).append(decision)
                    if truth != "unrelated":
                        per_transform.setdefault(f"{hashes}/{rule}", {}).setdefault(copy["kind"], []).append(decision)

    def share(xs: list[bool]) -> float:
        return round(sum(xs) / len(xs), 4) if xs else 0.0

    table = {
        key: {
            "recall_reproduction": share(by_truth.get("reproduction", [])),
            "match_rate_derivative": share(by_truth.get("derivative", [])),
            "false_positive_rate": share(by_truth.get("unrelated", [])),
            "per_transform": {k: share(xs) for k, xs in per_transform.get(key, {}).items()},
        }
        for key, by_truth in outcomes.items()
    }
    for key, row in table.items():
        print(key, json.dumps(row), file=sys.stderr, flush=True)
    ours_s, vpdq_s = statistics.median(times["ours"]), statistics.median(times["vpdq"])
    print(json.dumps({
        "ratio": round(vpdq_s / ours_s, 3), "ratio_basis": "median hashing seconds per clip, vPDQ / ours (1 fps + mirror)",
        "clips": len(videos), "reproduction_pairs": sum(c["label"] == "reproduction" for c in copies),
        "unrelated_pairs": len(copies) * (len(sources) - 1),
        "ours_s_median": round(ours_s, 3), "vpdq_s_median": round(vpdq_s, 3),
        "ours_s_range": [round(min(times["ours"]), 3), round(max(times["ours"]), 3)],
        "vpdq_s_range": [round(min(times["vpdq"]), 3), round(max(times["vpdq"]), 3)],
        "recall_ours_vpdq_rule": table["ours/vpdq_rule"]["recall_reproduction"],
        "recall_vpdq_vpdq_rule": table["vpdq/vpdq_rule"]["recall_reproduction"],
        "recall_ours_aligned_half": table["ours/aligned_half"]["recall_reproduction"],
        "recall_vpdq_aligned_half": table["vpdq/aligned_half"]["recall_reproduction"],
        "recall_ours_retrieved": table["ours/retrieved"]["recall_reproduction"],
        "recall_vpdq_retrieved": table["vpdq/retrieved"]["recall_reproduction"],
        "fpr_ours_vpdq_rule": table["ours/vpdq_rule"]["false_positive_rate"],
        "fpr_vpdq_vpdq_rule": table["vpdq/vpdq_rule"]["false_positive_rate"],
        "table": table,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
