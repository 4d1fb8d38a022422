"""Time to process one demo video through the media pipeline: probe, keyframes, ASR (faster-whisper base).

Generates the 6-ish second 640x360 "private deal" demo clip, ingests it into a throwaway test
database and runs ``video_process`` on it; the first run pays the whisper model load, later runs
reuse the process's cached model. The last line printed is one JSON object.

    .venv/bin/python bench/media_pipeline.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.media_pipeline``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    from moderation.media import extractors
    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.ingest import video_ingest
    from moderation.media.models import Video
    from moderation.media.pipeline import video_process

    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        script = DEMO_SCRIPTS[0]
        with tempfile.TemporaryDirectory() as tmp:
            clip = synthesize_video(Path(tmp) / "demo.mp4", title=script.title, speech=script.speech,
                                    on_screen=script.on_screen)  # fmt: skip
            started = time.perf_counter()
            extractors.whisper_model()
            model_load = time.perf_counter() - started
            runs = []
            for _ in range(args.repeats):
                Video.objects.all().delete()
                video = video_ingest(path=clip, title=script.title)
                timings: dict[str, float] = {}
                started = time.perf_counter()
                video_process(video_id=video.pk, timings=timings)
                timings["total"] = time.perf_counter() - started
                video.refresh_from_db()
                assert video.status == Video.Status.READY, video.error
                runs.append(timings)
                print({k: round(v, 3) for k, v in timings.items()}, video.duration, "s video")
    finally:
        teardown_databases(old_config, verbosity=0)
    result = {
        "video_seconds": video.duration,
        "whisper_model_load_s": round(model_load, 3),
        **{f"{k}_s_median": round(statistics.median(r[k] for r in runs), 3) for k in runs[0]},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
