"""What keeps the media pipeline near the decode + speech floor: which frames are read, the OCR line cache,
and speech detection before the speech model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moderation.media import analyzers, extractors
from moderation.media.pipeline import ocr_candidates


def _frame(text: str, *, bottom: str = "", shift: int = 0) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    from moderation.media.demo import font_file

    image = Image.new("RGB", (320, 180), (30 + shift, 60, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((shift, 100, shift + 60, 130), fill=(200, 120, 40))  # a moving shape behind the text
    font = ImageFont.truetype(font_file(), 20)
    draw.text((20, 20), text, font=font, fill="white")
    if bottom:
        draw.text((20, 140), bottom, font=font, fill="white")
    return np.asarray(image)


def test_only_frames_whose_content_changed_are_read_and_the_limit_holds() -> None:
    a, b = "0" * 64, "f" * 64
    near_a = "1" + "0" * 63  # one bit from a
    assert ocr_candidates([a, a, near_a, a, b, b, a], change_distance=24, limit=16) == [0, 4, 6]
    assert ocr_candidates([a, b] * 10, change_distance=24, limit=5) == [0, 5, 10, 14, 19]
    assert ocr_candidates([a, a, a], change_distance=-1, limit=16) == [0, 1, 2]  # -1: every frame (the old way)


def test_repeated_lines_are_recognised_once_and_a_changed_subtitle_is_read_again() -> None:
    frames = [_frame("Add me on WeChat", bottom="private deal", shift=s) for s in (0, 8, 16)]
    frames.append(_frame("Add me on WeChat", bottom="fast loan", shift=24))
    uncached = [analyzers.ocr_frames([f], cache=analyzers.OcrLineCache())[0] for f in frames]

    cache = analyzers.OcrLineCache()
    cached = analyzers.ocr_frames(frames, cache=cache)

    def texts(result: list[list[analyzers.TextBox]]) -> list[list[str]]:
        # Spaces aside: a batch pads lines to its widest, which can move a space the recogniser emits.
        return [[b.text.replace(" ", "") for b in boxes] for boxes in result]

    assert texts(cached) == texts(uncached)
    assert "fast" in "".join(b.text for b in cached[3]).lower()  # not the cached "private deal"
    assert cache.misses == 3 and cache.hits == 5  # title + two subtitles read; the repeats come from the cache
    assert [(b.x, b.y) for b in cached[1]] == [(b.x, b.y) for b in uncached[1]]  # boxes are the frame's own


def test_silent_audio_has_no_speech_spans_and_speech_is_merged_into_windows(speech_clip: Path) -> None:
    from faster_whisper import decode_audio

    assert extractors.speech_spans(np.zeros(16000 * 5, dtype=np.float32)) == []
    spans = extractors.speech_spans(decode_audio(str(speech_clip)))
    assert len(spans) == 1 and 0 <= spans[0][0] < spans[0][1] <= 4.5  # two sentences, one window


def test_frame_store_decodes_each_frame_once(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "f.jpg"
    Image.fromarray(_frame("hello")).save(path)
    store = analyzers.FrameStore()
    first = store.image(0, path)
    path.unlink()  # a second read would fail: the store must not touch the file again
    assert store.image(0, path) is first
    assert store.pdq(0, path) == analyzers.pdq_of(first)


def test_the_gpu_media_profile_puts_ocr_on_the_cuda_provider_by_setting(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OCR_DEVICE = "cuda"
    engine = analyzers._ocr_engine()
    # Asked for CUDA; on a machine without onnxruntime-gpu, onnxruntime runs it on the CPU provider.
    assert engine.text_det.infer.cfg_use_cuda and engine.text_rec.session.cfg_use_cuda
    settings.OCR_DEVICE = "cpu"
    assert not analyzers._ocr_engine().text_det.infer.cfg_use_cuda
