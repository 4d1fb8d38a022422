"""The ASR stage (faster-whisper base + progress writes + segment rows) vs bare ``WhisperModel.transcribe``.

    .venv/bin/python bench/asr.py [--repeats 3]

Both use the same loaded model, the same audio (a spoken demo clip) and the same options (VAD on,
beam 5); runs alternate. The stage runs against a throwaway test database. The last line is one
JSON object; ``ratio`` = median stage time ÷ median bare time (goal <= 1.10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.asr``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    django_setup()
    from django.test.utils import setup_databases, teardown_databases

    from moderation.media import extractors, pipeline
    from moderation.media.analyzers import FrameStore
    from moderation.media.demo import DEMO_SCRIPTS, synthesize_video
    from moderation.media.ingest import video_ingest
    from moderation.media.models import Video

    old = setup_databases(verbosity=0, interactive=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            script = DEMO_SCRIPTS[4]
            clip = synthesize_video(Path(tmp) / "speech.mp4", title=script.title, speech=script.speech,
                                    on_screen=script.on_screen, size=(320, 180))  # fmt: skip
            model = extractors.whisper_model()
            video = video_ingest(path=clip, title="asr bench")
            video.has_audio, video.duration = True, extractors.probe(clip).duration
            bare_runs, ours_runs = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                segments, info = model.transcribe(str(clip), vad_filter=True, beam_size=5)
                bare_text = [s.text for s in segments]
                bare_runs.append(time.perf_counter() - started)

                Video.objects.filter(pk=video.pk).update(stage=Video.Stage.ASR)
                started = time.perf_counter()
                pipeline._stage_asr(video, clip, FrameStore())
                ours_runs.append(time.perf_counter() - started)
                assert video.segments.count() == len([t for t in bare_text if t.strip()])
                print(f"bare {bare_runs[-1]:.3f}s  stage {ours_runs[-1]:.3f}s")
    finally:
        teardown_databases(old, verbosity=0)
    bare_m, ours_m = statistics.median(bare_runs), statistics.median(ours_runs)
    print(json.dumps({"audio_s": video.duration, "model": "whisper base int8 (pip wheels)", "bare_s": round(bare_m, 3),
                      "stage_s": round(ours_m, 3), "ratio": round(ours_m / bare_m, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
