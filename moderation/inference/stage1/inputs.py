"""What stage 1 reads of an item, built by one function for training, serving and evaluation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from moderation.inference.backends import ContentBundle

# A live video's title is stored in at most this many characters (Video.title); a KuaiMod record's
# title is cut the same way, so the benchmark sees what the app would.
TITLE_MAX_CHARS = 500
# Segments (OCR lines, speech segments) are joined with a line break: a word boundary for the
# character n-grams, the same whichever way the segments were stored.
SEGMENT_JOIN = "\n"
# The tagging wing's sources whose candidates depend only on the video and the vocabulary (names found in
# its text; e5 zero-shot), not on how many tagged videos the app has: what the ``tags`` field reads.
TAG_SOURCES = ("text", "embedding")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class TextItem:
    """What stage 1 sees of an item: its title, on-screen text and speech (segments joined)."""

    title: str = ""
    ocr: str = ""
    asr: str = ""
    # The cover plus sampled keyframes the item offers. NOT a default feature: in the KuaiMod benchmark
    # it is an artifact of how records were collected, in the app it is nearly constant (see bench/RESULTS.md, "Stage 1").
    frames: int = 0
    # The video's stored sentence embedding of its text (the tagging encoder's, L2-normalised); None
    # when not computed. Read only by a model whose config asks for the ``embedding`` field.
    embedding: tuple[float, ...] | None = None
    # The tagging wing's zero-shot candidate tag names (``stage1_tag_names``); read only by a model whose
    # config asks for the ``tags`` field.
    tags: tuple[str, ...] = ()


def stage1_tag_names(candidates: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The ``tags`` field from (tag name, source) pairs: the tagging wing's stored candidates
    (``TagCandidate`` rows) in the app, ``ranking.generate``'s candidates in the benchmark. Only
    ``TAG_SOURCES`` count; each name is one token (inner spaces become ``_``), sorted, once."""
    return tuple(
        sorted({_SPACE.sub("_", name.strip()) for name, source in candidates if source in TAG_SOURCES and name.strip()})
    )


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
        embedding=tuple(float(x) for x in content.text_embedding) if content.text_embedding is not None else None,
        tags=tuple(content.tag_names),
    )
