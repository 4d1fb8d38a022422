"""What stage 1 reads of an item, built by one function for training, serving and evaluation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from moderation.inference.backends import ContentBundle

# A live video's title is stored in at most this many characters (Video.title); a KuaiMod record's
# title is cut the same way, so the benchmark sees what the app would.
TITLE_MAX_CHARS = 500
# Segments (OCR lines, speech segments) are joined with a line break: a word boundary for the
# character n-grams, the same whichever way the segments were stored.
SEGMENT_JOIN = "\n"


@dataclass(frozen=True)
class TextItem:
    """What stage 1 sees of an item: its title, on-screen text and speech (segments joined)."""

    title: str = ""
    ocr: str = ""
    asr: str = ""
    # The cover plus sampled keyframes the item offers. NOT a default feature: in the KuaiMod benchmark
    # it is an artifact of how records were collected, in the app it is nearly constant (see bench/RESULTS.md, "Stage 1").
    frames: int = 0


def _joined(segments: Iterable[str]) -> str:
    return SEGMENT_JOIN.join(part.strip() for part in segments if part and part.strip())


def stage1_input(content: ContentBundle) -> TextItem:
    """The stage-1 input of an item. Every path goes through here: training (``content_bundle_for``
    of each labelled video), serving (the backend's bundle) and ``evaluate`` (a KuaiMod record's
    bundle, ``kuaimod_bundle``), so a video and its KuaiMod-record twin give the same features."""
    return TextItem(
        title=content.title[:TITLE_MAX_CHARS].strip(),
        ocr=_joined(content.ocr),
        asr=_joined(s.text for s in content.segments),
        frames=content.sampled_frames,
    )
