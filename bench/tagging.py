"""Content tagging: candidates + ranking per video against the bare encoder call on the same text,
and type-ahead search latency at 10,000 tags. Runs on a throwaway test database.

- The real vocabulary (3,396 Baidu VideoTag names) is imported and embedded once, then padded with
  synthetic two-tag names to ``--tags`` tags (search only: the padding is not embedded).
- ``--videos`` KuaiMod dev records become text-only videos. For each, alternately: ours
  (``tag_candidates_generate``: embed the text, text matches, zero-shot over the vocabulary,
  neighbours in pgvector, classifiers, ranking, rows written) and bare (``encoder.encode`` on the
  very text ours embeds). ``ratio`` = median ours ÷ median bare.
- Search: ``tag_search_ranked`` as the tags panel asks it (one GIN-indexed statement: ranked by the first
  video's suggestions, with the window count of matches) for one- to three-character queries taken from tag
  names, timed in the process (server time, no HTTP), p50 / p99. ``--search-only`` skips the embedding and
  the candidates (the video gets 40 random suggestions instead).

    .venv/bin/python bench/tagging.py [--videos 30] [--tags 10000] [--queries 300]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

_ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the checkout (../shared), or two levels up from a worktree.
SHARED = next((p for p in (_ROOT.parent / "shared", _ROOT.parent.parent / "shared") if p.exists()), _ROOT / "shared")
VOCAB = SHARED / "datasets" / "videotag" / "label_3396.txt"
DEV = SHARED / "datasets" / "kuaimod" / "dev.jsonl"


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--vocab", type=Path, default=VOCAB)
    parser.add_argument("--records", type=Path, default=DEV)
    parser.add_argument("--search-only", action="store_true", help="skip embedding and candidates: search latency only")
    args = parser.parse_args()

    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    old = setup_databases(verbosity=0, interactive=False)
    try:
        from moderation.media.models import Video
        from moderation.tagging import encoder
        from moderation.tagging.models import Tag, TagSuggestion
        from moderation.tagging.selectors import tag_search_ranked
        from moderation.tagging.services import (
            tag_candidates_generate,
            tags_embed_missing,
            tags_import,
            video_segments,
        )
        from moderation.tagging.text import embedding_text

        names = [n.strip() for n in args.vocab.read_text(encoding="utf-8").splitlines() if n.strip()]
        tags_import(lines=names)
        t0 = time.perf_counter()
        embedded = 0 if args.search_only else tags_embed_missing()
        print(f"embedded {embedded} tags in {time.perf_counter() - t0:.1f} s", flush=True)

        records = [json.loads(line) for line in args.records.read_text(encoding="utf-8").splitlines() if line.strip()]
        rng = random.Random(0)
        rng.shuffle(records)
        videos = [
            Video.objects.create(
                title=r.get("title", "")[:500], ocr_text=r.get("OCR", ""), asr_text=r.get("ASR", ""),
                status=Video.Status.READY, source=Video.Source.KUAIMOD,
            )
            for r in records[: max(1, args.videos)]
        ]  # fmt: skip
        ours: list[float] = []
        bare: list[float] = []
        if args.search_only:  # the video's suggestions, as the ranker would leave them: 40 tags, scored
            TagSuggestion.objects.bulk_create(
                TagSuggestion(video=videos[0], tag_id=pk, score=rng.random())
                for pk in rng.sample(list(Tag.objects.values_list("pk", flat=True)), 40)
            )
        else:
            encoder.encode(["warm up"])
            tag_candidates_generate(video_id=videos[0].pk)  # warm: vocabulary cache, first queries
        for i, video in enumerate([] if args.search_only else videos):
            text = embedding_text(video_segments(video)) or " "
            runs = [
                ("ours", lambda v=video: tag_candidates_generate(video_id=v.pk)),
                ("bare", lambda t=text: encoder.encode([t])),
            ]
            if i % 2:
                runs.reverse()
            for name, fn in runs:
                t = time.perf_counter()
                fn()
                (ours if name == "ours" else bare).append((time.perf_counter() - t) * 1000)
        if not ours:
            ours, bare = [0.0], [1.0]
        print(f"candidates+ranking per video: ours p50 {statistics.median(ours):.1f} ms, bare encoder "
              f"p50 {statistics.median(bare):.1f} ms ({len(ours)} videos)", flush=True)  # fmt: skip

        # Pad the vocabulary to --tags with synthetic names (two real names joined), for search.
        missing = max(0, args.tags - Tag.objects.count())
        padding: list[str] = []
        seen = set(names)
        while len(padding) < missing:
            name = rng.choice(names) + rng.choice(names)
            if name not in seen and len(name) <= 100:
                seen.add(name)
                padding.append(name)
        tags_import(lines=padding)
        total = Tag.objects.count()
        queries = []
        for _ in range(args.queries):
            n = rng.choice(names)
            start = rng.randrange(len(n))
            queries.append(n[start : start + rng.choice((1, 2, 3))])
        # As the tags panel asks: ranked by one video's suggestions, with the count of matches.
        tag_search_ranked(query="美", video_id=videos[0].pk)  # warm
        times: list[float] = []
        hits: list[int] = []
        for q in queries:
            t = time.perf_counter()
            found = tag_search_ranked(query=q, video_id=videos[0].pk)
            times.append((time.perf_counter() - t) * 1000)
            hits.append(found.total)
        print(f"search at {total} tags: p50 {statistics.median(times):.2f} ms, p99 {_pct(times, 0.99):.2f} ms, "
              f"max {max(times):.2f} ms over {len(times)} queries", flush=True)  # fmt: skip
        ratio = statistics.median(ours) / statistics.median(bare)
        result = {
            "ratio": round(ratio, 3),
            # Per video, ours ÷ bare on the same text, timed back to back: steadier than the ratio of medians when
            # the texts' lengths (and so both costs) vary a lot between videos.
            "paired_ratio_median": round(statistics.median(o / b for o, b in zip(ours, bare, strict=True)), 3),
            "candidates_ms_p50": round(statistics.median(ours), 1),
            "candidates_ms_p90": round(_pct(ours, 0.9), 1),
            "bare_encoder_ms_p50": round(statistics.median(bare), 1),
            "bare_encoder_ms_p90": round(_pct(bare, 0.9), 1),
            "videos": len(ours),
            "vocabulary_embedded": embedded,
            "search_tags": total,
            "search_ms_p50": round(statistics.median(times), 2),
            "search_ms_p99": round(_pct(times, 0.99), 2),
            "search_ms_max": round(max(times), 2),
            "search_queries": len(times),
            "search_mean_results": round(statistics.mean(hits), 1),
        }
        print(json.dumps(result))
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
