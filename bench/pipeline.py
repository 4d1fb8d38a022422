"""Whole media pipeline cost per video against the floor (one decode + one transcription), with its quality.

    .venv/bin/python bench/pipeline.py [--videos 6] [--workers 2] [--quality 4] [--no-before]

Speed: 30-second 1280x720 demo clips (moving pattern, burned-in title/caption/subtitles, espeak-ng speech
padded to 30 s). Two forked processes (one per core, like two prefork media workers), each warmed first
(whisper, OCR and text-embedding models loaded). In rounds of ``--workers`` videos, interleaved and in a
rotating order so load drift hits all three alike, the pool runs:

* **ours**: ``video_process`` with the current settings;
* **bare**: the floor on the same files: ``ffmpeg -vf fps=1 -f null`` (decode at 1 fps) followed by
  ``WhisperModel.transcribe(path)`` with its defaults, segments consumed;
* **before** (unless ``--no-before``): ``video_process`` with the settings that restore the previous
  behaviour (OCR of OCR_MAX_FRAMES frames spread evenly, no line cache, sequential ASR for all speech).

Quality: the ``media_quality`` videos (known Chinese/English titles, subtitles, stickers, small text and
known speech) processed with the current and with the before settings: OCR character recall, ASR word
error rate, stored keyframe / OCR'd-frame / transcript-segment counts.

The last line is one JSON object; ``ratio`` = our wall time per video ÷ the bare floor's, over all rounds
(goal <= 1.5), ``ratio_rounds`` gives the median and range of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.pipeline``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import media_quality  # noqa: E402
from _common import django_setup  # noqa: E402

# The settings that restore the pipeline's previous behaviour (for the "before" columns).
BEFORE = {"OCR_CHANGE_DISTANCE": -1, "OCR_CACHE_MIN_CORRELATION": 2.0, "WHISPER_BATCHED_MIN_SPEECH_S": 1e12}


def _warm() -> None:
    from moderation.media import analyzers, extractors

    extractors.whisper_model()
    analyzers._ocr_engine()
    analyzers.text_embedding("warm up")


def _warm_task(seconds: float) -> None:
    time.sleep(seconds)  # keeps one process busy so the other gets the second warm-up


def _process(job: tuple[int, bool]) -> dict[str, float]:
    from django.db import connection
    from django.test import override_settings

    from moderation.media.models import Video
    from moderation.media.pipeline import video_process

    video_id, before = job
    # Each run starts from nothing (the same Video row is processed by ours and before in turn).
    Video.objects.filter(pk=video_id).update(status=Video.Status.UPLOADED, stage=Video.Stage.QUEUED)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with override_settings(**(BEFORE if before else {})):
        video_process(video_id=video_id, timings=timings)
    timings["total"] = time.perf_counter() - started
    video = Video.objects.get(pk=video_id)
    assert video.status == Video.Status.READY, video.error
    connection.close()
    return timings


def _bare(path: str) -> dict[str, float]:
    from moderation.media import extractors

    started = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-vf", "fps=1", "-f", "null", "-"],
                   check=True)  # fmt: skip
    decoded = time.perf_counter()
    segments, _info = extractors.whisper_model().transcribe(path)
    for _segment in segments:
        pass
    done = time.perf_counter()
    return {"decode": decoded - started, "asr": done - decoded, "total": done - started}


def _timed(pool: ProcessPoolExecutor, fn: Any, jobs: list[Any]) -> tuple[float, list[dict[str, float]]]:
    started = time.perf_counter()
    results = list(pool.map(fn, jobs))
    return time.perf_counter() - started, results


def _mean_stages(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in runs for k in r} - {"total"}, key=lambda k: -statistics.mean(r.get(k, 0) for r in runs))
    return {k: round(statistics.mean(r.get(k, 0.0) for r in runs), 3) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quality", type=int, default=4, help="quality videos (0: skip the quality measurement)")
    parser.add_argument("--no-before", action="store_true", help="skip the before-settings runs")
    args = parser.parse_args()
    django_setup()
    from django.db import connections
    from django.test.utils import setup_databases, teardown_databases

    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.ingest import video_ingest
    from tests.factories import PolicyVersionFactory

    load_start = os.getloadavg()
    old = setup_databases(verbosity=0, interactive=False)
    modes = ["ours", "bare"] + ([] if args.no_before else ["before"])
    walls: dict[str, list[float]] = {m: [] for m in modes}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    quality: dict[str, list[dict[str, float | int]]] = {"ours": [], "before": []}
    try:
        PolicyVersionFactory()  # the active policy's keywords drive keyframe scoring
        with tempfile.TemporaryDirectory() as tmp:
            clips, ids = [], []
            for i in range(args.videos):
                script = DEMO_SCRIPTS[i % len(DEMO_SCRIPTS)]
                clip = synthesize_video(Path(tmp) / f"v{i}.mp4", title=f"{script.title} #{i}", speech=script.speech,
                                        on_screen=script.on_screen, size=(1280, 720), min_seconds=30, max_seconds=30)  # fmt: skip
                clips.append(str(clip))
                ids.append(video_ingest(path=clip, title=script.title).pk)
            qvideos = media_quality.quality_videos(args.quality)
            qids = [
                video_ingest(path=media_quality.render(q, Path(tmp) / f"{q.name}.mp4"), title=q.name).pk
                for q in qvideos
            ]
            connections.close_all()
            with ProcessPoolExecutor(args.workers, mp_context=get_context("fork"), initializer=_warm) as pool:
                list(pool.map(_warm_task, [2.0] * args.workers))
                for r, start in enumerate(range(0, len(ids), args.workers)):
                    batch = list(range(start, min(start + args.workers, len(ids))))
                    order = modes[r % len(modes) :] + modes[: r % len(modes)]
                    for mode in order:
                        if mode == "bare":
                            wall, res = _timed(pool, _bare, [clips[i] for i in batch])
                        else:
                            wall, res = _timed(pool, _process, [(ids[i], mode == "before") for i in batch])
                        walls[mode].append(wall / len(batch))  # wall seconds per video at full load
                        runs[mode] += res
                    print(f"round {r}: " + ", ".join(f"{m} {walls[m][-1]:.2f}s/video" for m in modes), flush=True)
                for mode in ("ours", "before") if not args.no_before else ("ours",):
                    list(pool.map(_process, [(pk, mode == "before") for pk in qids]))
                    connections.close_all()
                    quality[mode] = [media_quality.measure(pk, q) for pk, q in zip(qids, qvideos, strict=True)]
                    connections.close_all()
    finally:
        teardown_databases(old, verbosity=0)
    load_end = os.getloadavg()
    per_round = [o / b for o, b in zip(walls["ours"], walls["bare"], strict=True)]
    ours_s, bare_s = statistics.mean(walls["ours"]), statistics.mean(walls["bare"])
    result: dict[str, Any] = {
        "ratio": round(ours_s / bare_s, 3),
        "ratio_rounds": {"median": round(statistics.median(per_round), 3), "min": round(min(per_round), 3),
                         "max": round(max(per_round), 3), "n": len(per_round)},
        "ours_s_per_video": round(ours_s, 2),
        "bare_s_per_video": round(bare_s, 2),
        "videos_per_min": round(60 / ours_s, 2),
        "stage_s": _mean_stages(runs["ours"]),
        "bare_stage_s": _mean_stages(runs["bare"]),
    }  # fmt: skip
    if not args.no_before:
        before_s = statistics.mean(walls["before"])
        result |= {
            "before_ratio": round(before_s / bare_s, 3),
            "before_s_per_video": round(before_s, 2),
            "before_videos_per_min": round(60 / before_s, 2),
            "before_stage_s": _mean_stages(runs["before"]),
        }
    if qids:
        after_q = media_quality.summarize(quality["ours"])
        result["ocr_char_recall"] = after_q["ocr_char_recall"]
        result["asr_wer"] = after_q["asr_wer"]
        result["quality"] = {"after": after_q}
        if quality["before"]:
            before_q = media_quality.summarize(quality["before"])
            result["ocr_char_recall_before"] = before_q["ocr_char_recall"]
            result["asr_wer_before"] = before_q["asr_wer"]
            result["quality"]["before"] = before_q
    result |= {"videos": len(ids), "workers": args.workers, "video": "30 s 1280x720 + speech",
               "quality_videos": len(qids), "loadavg_1m_start_end": [round(load_start[0], 1), round(load_end[0], 1)]}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
