"""Tiny real media for the media tests, generated once per session with ffmpeg and espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from moderation.media.demo import synthesize_video

SPEECH = "Add me on WeChat for a private deal. Message me privately."


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-src")


@pytest.fixture(scope="session")
def speech_clip(media_dir: Path) -> Path:
    """About 3-4 s, 320x180, H.264 + AAC, espeak-ng saying SPEECH."""
    return synthesize_video(
        media_dir / "speech.mp4",
        title="Private deal",
        speech=SPEECH,
        on_screen="Add me on WeChat",
        size=(320, 180),
        min_seconds=2.0,
        max_seconds=4.0,
    )


@pytest.fixture(scope="session")
def silent_clip(media_dir: Path) -> Path:
    """3 s, 320x180, video only (no audio stream at all)."""
    return synthesize_video(
        media_dir / "silent.mp4", title="No sound", size=(320, 180), min_seconds=3.0, max_seconds=3.0, audio=False
    )


@pytest.fixture(scope="session")
def bad_files(media_dir: Path, speech_clip: Path) -> dict[str, Path]:
    """Files a careless uploader could send: none of them is a playable video."""
    text = media_dir / "notes.mp4"
    text.write_text("Meeting notes\n" * 40)
    text_txt = media_dir / "notes.txt"
    shutil.copyfile(text, text_txt)
    jpeg = media_dir / "photo.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1",
         "-f", "image2", "-c:v", "mjpeg", str(jpeg)],
        check=True,
    )  # fmt: skip
    truncated = media_dir / "truncated.mp4"
    truncated.write_bytes(speech_clip.read_bytes()[:4000])  # moov at the start (faststart), media data cut off
    truncated_head = media_dir / "truncated-head.mp4"
    truncated_head.write_bytes(speech_clip.read_bytes()[:600])
    empty = media_dir / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "text": text,
        "text_txt": text_txt,
        "jpeg": jpeg,
        "truncated": truncated,
        "truncated_head": truncated_head,
        "empty": empty,
    }


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight CLIP (projection 512, like ViT-B/32) with a BPE tokenizer trained here: no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-clip")
    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tok.train_from_iterator(["add me on wechat for a private deal", "bank card loan", "tomato soup"] * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
        unk_token="<|endoftext|>", pad_token="<|endoftext|>",
    )  # fmt: skip
    config = CLIPConfig(
        text_config={
            "vocab_size": fast.vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 64, "eos_token_id": fast.eos_token_id,
            "bos_token_id": fast.bos_token_id, "pad_token_id": fast.pad_token_id,
        },
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=512,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=fast).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight ViT, 32x32 input in 8x8 patches (a 4x4 grid)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=8)  # fmt: skip
    ViTModel(config, add_pooling_layer=False).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@pytest.fixture(scope="session")
def text_frames(media_dir: Path) -> dict[str, Path]:
    """Still frames with known on-screen text: English burned in by ffmpeg drawtext, Chinese drawn by PIL."""
    from PIL import Image, ImageDraw, ImageFont

    from moderation.media.demo import font_file

    english = media_dir / "frame-en.jpg"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x336699:size=320x180", "-vf",
         f"drawtext=fontfile={font_file()}:text='Add me on WeChat':fontsize=22:fontcolor=white:x=20:y=80",
         "-frames:v", "1", str(english)],
        check=True,
    )  # fmt: skip
    frames = {"en": english}
    if CJK_FONT.exists():
        chinese = media_dir / "frame-zh.jpg"
        image = Image.new("RGB", (320, 180), (40, 40, 40))
        ImageDraw.Draw(image).text((30, 70), "加微信私下交易", font=ImageFont.truetype(str(CJK_FONT), 30), fill="white")
        image.save(chinese, quality=95)
        frames["zh"] = chinese
    return frames
