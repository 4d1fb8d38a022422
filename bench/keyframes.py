"""Keyframe extraction (1 fps candidates, scaled JPEGs) vs a bare ffmpeg 1 fps decode of the same files.

    .venv/bin/python bench/keyframes.py [--videos 3] [--repeats 3]

The floor is ``ffmpeg -i X -vf fps=1 -f null -``: the same decode and the same fps filter, writing nothing.
Runs alternate (bare, ours) per file so background load hits both alike. The last line is one JSON
object; ``ratio`` = median total wall time of ours ÷ bare (goal <= 1.15).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.keyframes``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, plain_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    django_setup()
    from django.conf import settings

    from moderation.media import extractors

    with tempfile.TemporaryDirectory() as tmp:
        clips = [plain_clip(Path(tmp) / f"clip{i}.mp4", fps=25 + 5 * i) for i in range(args.videos)]
        bare_runs, ours_runs = [], []
        for _ in range(args.repeats):
            bare = ours = 0.0
            for clip in clips:
                started = time.perf_counter()
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clip), "-vf", "fps=1", "-f", "null", "-"],
                               check=True)  # fmt: skip
                bare += time.perf_counter() - started
                out = Path(tmp) / "frames"
                started = time.perf_counter()
                frames = extractors.extract_keyframes(
                    clip, out, fps=float(settings.KEYFRAME_FPS), width=int(settings.KEYFRAME_THUMB_WIDTH), duration=30.0
                )
                ours += time.perf_counter() - started
                assert len(frames) == 30, len(frames)
                shutil.rmtree(out)
            bare_runs.append(bare)
            ours_runs.append(ours)
            print(f"bare {bare:.3f}s  ours {ours:.3f}s  ratio {ours / bare:.3f}")
    bare_m, ours_m = statistics.median(bare_runs), statistics.median(ours_runs)
    print(json.dumps({"videos": len(clips), "video": "30 s 1280x720 H.264", "bare_s": round(bare_m, 3),
                      "ours_s": round(ours_m, 3), "ratio": round(ours_m / bare_m, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
