"""Whole media pipeline throughput: 30-second 720p videos, two worker processes (one per core).

    .venv/bin/python bench/pipeline.py [--videos 6] [--workers 2]

Each video is a 1280x720 demo clip (moving pattern, burned-in caption, espeak-ng speech, padded to
30 s). Two forked processes, each warmed first (whisper, OCR and text-embedding models loaded), run
``video_process`` over the batch like two prefork media workers. Prints videos per minute and the
mean seconds per stage. The last line is one JSON object; its ``ratio`` is wall time ÷ the sum of
per-video times divided by the worker count (1.0 = perfect use of both cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from _common import django_setup


def _warm() -> None:
    from moderation.media import analyzers, extractors

    extractors.whisper_model()
    analyzers._ocr_engine()
    analyzers.text_embedding("warm up")


def _warm_task(seconds: float) -> None:
    time.sleep(seconds)  # keeps one process busy so the other gets the second warm-up


def _process(video_id: int) -> dict[str, float]:
    from django.db import connection

    from moderation.media.models import Video
    from moderation.media.pipeline import video_process

    timings: dict[str, float] = {}
    started = time.perf_counter()
    video_process(video_id=video_id, timings=timings)
    timings["total"] = time.perf_counter() - started
    assert Video.objects.get(pk=video_id).status == Video.Status.READY
    connection.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    django_setup()
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.ingest import video_ingest
    from tests.factories import PolicyVersionFactory

    old = setup_databases(verbosity=0, interactive=False)
    try:
        PolicyVersionFactory()  # the active policy's keywords drive keyframe scoring
        with tempfile.TemporaryDirectory() as tmp:
            ids = []
            for i in range(args.videos):
                script = DEMO_SCRIPTS[i % len(DEMO_SCRIPTS)]
                clip = synthesize_video(Path(tmp) / f"v{i}.mp4", title=f"{script.title} #{i}", speech=script.speech,
                                        on_screen=script.on_screen, size=(1280, 720), min_seconds=30, max_seconds=30)  # fmt: skip
                ids.append(video_ingest(path=clip, title=script.title).pk)
            connections.close_all()
            with ProcessPoolExecutor(args.workers, mp_context=get_context("fork"), initializer=_warm) as pool:
                list(pool.map(_warm_task, [2.0] * args.workers))
                started = time.perf_counter()
                runs = list(pool.map(_process, ids))
                wall = time.perf_counter() - started
    finally:
        teardown_databases(old, verbosity=0)
    stages = sorted({k for r in runs for k in r} - {"total"}, key=lambda k: -statistics.mean(r.get(k, 0) for r in runs))
    split = {k: round(statistics.mean(r.get(k, 0.0) for r in runs), 3) for k in stages}
    busy = sum(r["total"] for r in runs)
    print("mean seconds per stage per video:", split)
    print(json.dumps({"videos": len(ids), "workers": args.workers, "video": "30 s 1280x720 + speech",
                      "wall_s": round(wall, 2), "videos_per_minute": round(60 * len(ids) / wall, 2),
                      "mean_video_s": round(busy / len(ids), 2), "stage_mean_s": split,
                      "ratio": round(wall / (busy / args.workers), 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
