"""OCR, keyframe scorers, patch saliency, PDQ and embeddings on real images and tiny random models."""

from __future__ import annotations

from pathlib import Path

import pytest

from moderation.media import analyzers


def test_ocr_reads_burned_in_english_with_a_box(text_frames: dict[str, Path]) -> None:
    boxes = analyzers.ocr_image(text_frames["en"])

    line = next(b for b in boxes if "wechat" in b.text.lower())
    assert analyzers.keyword_similarity(line.text, ["add me on wechat"]) == 1.0
    assert 10 <= line.x <= 40 and 60 <= line.y <= 95 and line.w > 100 and 10 <= line.h <= 40
    assert line.confidence > 0.5


def test_ocr_reads_chinese(text_frames: dict[str, Path]) -> None:
    if "zh" not in text_frames:
        pytest.skip("no CJK font installed (apt install fonts-wqy-microhei)")
    text = "".join(b.text for b in analyzers.ocr_image(text_frames["zh"]))
    assert "微信" in text and "交易" in text, text


def test_ocr_of_a_blank_frame_is_empty(media_dir: Path) -> None:
    from PIL import Image

    blank = media_dir / "blank.png"
    Image.new("RGB", (320, 180), "black").save(blank)
    assert analyzers.ocr_image(blank) == []


def test_keyword_similarity_ignores_spacing_and_tolerates_misreads() -> None:
    assert analyzers.keyword_similarity("AddmeonWeChat", ["wechat"]) == 1.0
    assert analyzers.keyword_similarity("快来加微信领红包", ["加微信"]) == 1.0
    assert 0.5 < analyzers.keyword_similarity("WeChaf", ["wechat"]) < 1.0
    assert analyzers.keyword_similarity("Tomato soup", ["wechat", "private deal"]) == 0.0
    assert analyzers.keyword_similarity("", ["wechat"]) == 0.0


def test_offline_scorer_ranks_the_keyword_frame_first_and_counts_visual_change(
    text_frames: dict[str, Path], media_dir: Path
) -> None:
    from PIL import Image

    plain = media_dir / "plain.png"
    Image.new("RGB", (320, 180), (0x33, 0x66, 0x99)).save(plain)
    cut = media_dir / "cut.png"
    Image.new("RGB", (320, 180), "white").save(cut)
    paths = [plain, plain, text_frames["en"], plain, cut]
    texts = ["", "", "Add me on WeChat", "", ""]

    result = analyzers.score_offline(paths, texts, ["wechat"])

    assert result.scorer.startswith("offline:")
    assert max(range(5), key=lambda i: result.scores[i]) == 2
    assert result.scores[1] == 0.0  # identical to the previous frame, no text
    assert result.scores[4] > result.scores[3]  # a cut to white is a visual change


def test_clip_scorer_on_a_tiny_random_clip(tiny_clip: Path, text_frames: dict[str, Path], silent_frame: Path) -> None:
    result = analyzers.score_clip([text_frames["en"], silent_frame], ["wechat", "bank card"], source=str(tiny_clip))

    assert result.scorer.startswith(f"clip:{tiny_clip}")
    assert len(result.scores) == 2 and all(-1.0 <= s <= 1.0 for s in result.scores)
    assert result.scores[0] != result.scores[1]  # different pictures score differently
    assert result.embeddings is not None and len(result.embeddings[0]) == 512
    assert result.embedding_model == f"clip:{tiny_clip}"


@pytest.fixture(scope="session")
def silent_frame(media_dir: Path) -> Path:
    from PIL import Image, ImageDraw

    path = media_dir / "shapes.png"
    image = Image.new("RGB", (320, 180), "black")
    ImageDraw.Draw(image).rectangle((200, 20, 300, 160), fill="yellow")
    image.save(path)
    return path


def test_vit_patches_are_boxes_in_image_pixels(tiny_vit: Path, silent_frame: Path) -> None:
    patches = analyzers.patches_from_vit(silent_frame, source=str(tiny_vit), top_k=3)

    assert len(patches) == 3
    assert patches[0].score == 1.0 and all(0 < p.score <= 1.0 for p in patches)
    assert [p.score for p in patches] == sorted((p.score for p in patches), reverse=True)
    for p in patches:  # a 4x4 grid over 320x180
        assert (p.w, p.h) == (80, 45) and p.x % 80 == 0 and p.y % 45 == 0


def test_ocr_patches_are_the_text_boxes(text_frames: dict[str, Path]) -> None:
    boxes = analyzers.ocr_image(text_frames["en"])
    patches = analyzers.patches_from_ocr(boxes, 5)
    assert patches and patches[0].label in {b.text for b in boxes}
    assert (patches[0].x, patches[0].y) in {(b.x, b.y) for b in boxes}


def test_pdq_is_stable_and_the_signature_drops_near_duplicates(
    text_frames: dict[str, Path], silent_frame: Path
) -> None:
    h1, q1 = analyzers.pdq(text_frames["en"])
    h2, _ = analyzers.pdq(text_frames["en"])
    h3, _ = analyzers.pdq(silent_frame)
    assert len(h1) == 64 and int(h1, 16) >= 0 and 0 <= q1 <= 100
    assert h1 == h2 and analyzers.hamming(h1, h3) > 31

    sig = analyzers.pdq_signature([(0.0, h1, q1), (1.0, h2, q1), (2.0, h3, 50), (3.0, h1, q1)])
    assert [e["t"] for e in sig] == [0.0, 2.0, 3.0]  # the repeat at 1 s is dropped, the return at 3 s is not


def test_offline_frame_embedding_is_a_512d_unit_vector(text_frames: dict[str, Path], silent_frame: Path) -> None:
    a = analyzers.frame_embedding_offline(text_frames["en"])
    b = analyzers.frame_embedding_offline(silent_frame)
    assert len(a) == 512 and abs(sum(x * x for x in a) - 1.0) < 1e-3
    assert sum(x * y for x, y in zip(a, a, strict=True)) > sum(x * y for x, y in zip(a, b, strict=True))


def test_text_embedding_from_the_bundled_minilm_puts_paraphrases_close() -> None:
    a = analyzers.text_embedding("add me on wechat for a private deal")
    b = analyzers.text_embedding("message me privately on wechat, we can make a deal")
    c = analyzers.text_embedding("simmer the tomato soup for twenty minutes")
    assert len(a) == 384

    def cos(x: list[float], y: list[float]) -> float:
        return sum(i * j for i, j in zip(x, y, strict=True))

    assert cos(a, b) > cos(a, c) + 0.2
