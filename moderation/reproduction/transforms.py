"""ffmpeg transformations that make reproduced (and derivative) copies of a video, for evaluation and tests.

Each transform names the label a reviewer would give the copy: a plain re-upload with technical
changes is a ``reproduction``; a copy that adds material of its own (new narration, the original
shrunk inside new footage) is a ``derivative``.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from moderation.errors import ModerationError
from moderation.media.demo import _duration, _escape_filter_path, font_file


@dataclass(frozen=True)
class Transform:
    name: str
    label: str  # "reproduction" | "derivative"
    description: str


TRANSFORMS: tuple[Transform, ...] = (
    Transform("reencode", "reproduction", "re-encoded at a much lower bitrate"),
    Transform("crop", "reproduction", "cropped by 15% and scaled back"),
    Transform("mirror", "reproduction", "mirrored left to right"),
    Transform("speed", "reproduction", "sped up by 10%"),
    Transform("slow", "reproduction", "slowed down by 10%"),
    Transform("overlay", "reproduction", "a repost caption laid over the picture"),
    Transform("trim", "reproduction", "a trimmed segment (first second and the end cut)"),
    Transform("pip", "derivative", "picture-in-picture inside new footage"),
    Transform("renarrate", "derivative", "new narration over the picture"),
)
BY_NAME = {t.name: t for t in TRANSFORMS}
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1"]
AUDIO = ["-c:a", "aac", "-b:a", "48k", "-ar", "16000", "-ac", "1"]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise ModerationError(f"ffmpeg failed: {proc.stderr.strip()[-500:]}")


def apply(name: str, source: Path, out: Path, *, narration: str = "This is my own commentary on this clip.") -> Path:
    """Write ``source`` transformed by ``name`` to ``out`` (H.264 + AAC mp4)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    base = ["ffmpeg", "-nostdin", "-y", "-v", "error"]
    common = ["-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart"]
    if name == "reencode":
        _run([*base, "-i", str(source), "-c:v", "libx264", "-b:v", "60k", "-preset", "veryfast", "-pix_fmt", "yuv420p",
              "-threads", "1", *AUDIO, *common, str(out)])  # fmt: skip
    elif name == "crop":
        _run([*base, "-i", str(source), "-vf", "crop=iw*0.85:ih*0.85,scale=trunc(iw/0.85/2)*2:trunc(ih/0.85/2)*2",
              *ENCODE, *AUDIO, *common, str(out)])  # fmt: skip
    elif name == "mirror":
        _run([*base, "-i", str(source), "-vf", "hflip", *ENCODE, *AUDIO, *common, str(out)])
    elif name in {"speed", "slow"}:
        factor = 1.1 if name == "speed" else 0.9
        _run([*base, "-i", str(source), "-vf", f"setpts=PTS/{factor}", "-af", f"atempo={factor}",
              *ENCODE, *AUDIO, *common, str(out)])  # fmt: skip
    elif name == "overlay":
        font = _escape_filter_path(Path(font_file()))
        _run([*base, "-i", str(source), "-vf",
              f"drawtext=fontfile='{font}':text='REPOST':x=10:y=h-text_h-10:fontsize=h/12:fontcolor=yellow",
              *ENCODE, *AUDIO, *common, str(out)])  # fmt: skip
    elif name == "trim":
        seconds = _duration(source)
        _run([*base, "-ss", "1", "-i", str(source), "-t", f"{max(1.0, seconds - 1.5):.2f}", *ENCODE, *AUDIO,
              *common, str(out)])  # fmt: skip
    elif name == "pip":
        _run([*base, "-i", str(source), "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=25", "-filter_complex",
              "[0:v]scale=iw/2.5:-2[small];[1:v][small]overlay=W-w-8:8:shortest=1[v]", "-map", "[v]", "-map", "0:a?",
              *ENCODE, *AUDIO, *common, str(out)])  # fmt: skip
    elif name == "renarrate":
        with tempfile.TemporaryDirectory(prefix="renarrate-") as tmp:
            wav = Path(tmp) / "voice.wav"
            _run(["espeak-ng", "-s", "150", "-v", "en-us", "-w", str(wav), narration])
            _run([*base, "-i", str(source), "-i", str(wav), "-map", "0:v", "-map", "1:a", "-shortest", *ENCODE,
                  *AUDIO, *common, str(out)])  # fmt: skip
    else:
        raise ModerationError(f"Unknown transform {name!r}.")
    return out
