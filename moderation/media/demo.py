"""Synthetic demo videos: a moving test pattern, a burned-in title and subtitles, and espeak-ng speech.

Used by ``manage.py generate_demo`` and by the media tests. The output is a function of the inputs
(bit-exact flags, no timestamps in the container), so generating twice gives the same bytes and the
second ingest finds the first video.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moderation.errors import ModerationError

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class DemoScript:
    slug: str
    title: str
    speech: str
    on_screen: str  # extra burned-in line (the caption a creator would put on the video)
    problem: str  # what a moderator should notice; "" for harmless videos


DEMO_SCRIPTS: tuple[DemoScript, ...] = (
    DemoScript(
        slug="private-deal",
        title="Cheap phones, DM me",
        speech="Add me on WeChat for a private deal. Message me privately outside the app.",
        on_screen="Add me on WeChat - private deal",
        problem="steers buyers to a private deal outside the platform",
    ),
    DemoScript(
        slug="miracle-tea",
        title="Miracle herbal tea",
        speech="This tea cures everything. One hundred percent effective, guaranteed.",
        on_screen="Cures everything! 100% effective",
        problem="exaggerated health claim",
    ),
    DemoScript(
        slug="tomato-soup",
        title="Easy tomato soup",
        speech="Today we cook a simple tomato soup. Chop the onions and simmer for twenty minutes.",
        on_screen="Tomato soup in 20 minutes",
        problem="",
    ),
    DemoScript(
        slug="mountain-trip",
        title="Weekend in the mountains",
        speech="We hiked to the lake this morning. The view from the top was beautiful.",
        on_screen="Lake hike, day one",
        problem="",
    ),
    DemoScript(
        slug="loan-offer",
        title="Fast cash tonight",
        speech="Need money fast? Send me your bank card number and I will transfer the loan tonight.",
        on_screen="Send your card number for a fast loan",
        problem="solicits bank details (fraud)",
    ),
    DemoScript(
        slug="cat-nap",
        title="Sleepy cat",
        speech="My cat found the sunniest spot in the house and fell asleep again.",
        on_screen="Nap time",
        problem="",
    ),
)


def font_file() -> str:
    """A TrueType font for drawtext (Debian: apt install fonts-dejavu-core)."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    if shutil.which("fc-match"):
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "sans:bold"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found and Path(found).is_file():
            return found
    raise ModerationError("No font for ffmpeg drawtext: install fonts-dejavu-core (apt) or any TrueType font.")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise ModerationError(f"{cmd[0]} failed: {proc.stderr.strip()[-500:]}")


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return float(out or 0)


def _escape_filter_path(path: Path) -> str:
    # Inside an ffmpeg filter graph ':' and '\' and "'" are special.
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def _subtitle_chunks(speech: str, parts: int) -> list[str]:
    words = speech.split()
    size = max(1, -(-len(words) // parts))
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def synthesize_video(
    out: Path,
    *,
    title: str,
    speech: str = "",
    on_screen: str = "",
    size: tuple[int, int] = (640, 360),
    min_seconds: float = 5.0,
    max_seconds: float = 8.0,
    audio: bool = True,
) -> Path:
    """Render one synthetic clip to ``out`` (H.264 + AAC mp4); its length follows the speech, within bounds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    font = _escape_filter_path(Path(font_file()))
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp_name:
        tmp = Path(tmp_name)
        seconds = min_seconds
        wav = tmp / "speech.wav"
        if audio and speech:
            _run(["espeak-ng", "-s", "150", "-w", str(wav), speech])
            seconds = min(max(_duration(wav) + 0.6, min_seconds), max_seconds)
        seconds = round(seconds, 2)

        # Texts go through files so no quoting of user text inside the filter graph is needed.
        filters = []
        big = max(12, height // 14)
        small = max(10, height // 20)
        texts: list[tuple[str, str, str, tuple[float, float] | None]] = [
            ("title", title, f"x=(w-text_w)/2:y={height // 18}:fontsize={big}", None)
        ]
        if on_screen:
            texts.append(("caption", on_screen, f"x=(w-text_w)/2:y=h/2-text_h/2:fontsize={big}", None))
        chunks = _subtitle_chunks(speech, 3) if speech else []
        for i, chunk in enumerate(chunks):
            start, end = seconds * i / len(chunks), seconds * (i + 1) / len(chunks)
            texts.append((f"sub{i}", chunk, f"x=(w-text_w)/2:y=h-text_h-{height // 14}:fontsize={small}", (start, end)))
        for name, text, place, window in texts:
            text_path = tmp / f"{name}.txt"
            text_path.write_text(text, encoding="utf-8")
            f = (
                f"drawtext=fontfile='{font}':textfile='{_escape_filter_path(text_path)}':{place}"
                ":fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=6"
            )
            if window:
                f += f":enable='between(t,{window[0]:.2f},{window[1]:.2f})'"
            filters.append(f)

        cmd = [
            "ffmpeg", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
        ]  # fmt: skip
        if audio and speech:
            cmd += ["-i", str(wav)]
            audio_map = ["-filter_complex", f"[1:a]apad=whole_dur={seconds}[a]", "-map", "0:v", "-map", "[a]"]
            audio_codec = ["-c:a", "aac", "-b:a", "64k", "-ar", "16000", "-ac", "1"]
        elif audio:
            cmd += ["-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={seconds}"]
            audio_map = ["-map", "0:v", "-map", "1:a"]
            audio_codec = ["-c:a", "aac", "-b:a", "32k"]
        else:
            audio_map, audio_codec = ["-map", "0:v"], []
        cmd += [
            *audio_map,
            "-vf", ",".join(filters),
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1",
            *audio_codec,
            "-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1",
            "-movflags", "+faststart",
            str(out),
        ]  # fmt: skip
        _run(cmd)
    return out
