"""Text hygiene shared by every importer and the API's JSON parser, and the reading of ids typed into forms."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

REPLACEMENT = "\ufffd"
# NUL (PostgreSQL text cannot hold it) and lone UTF-16 surrogates (a JSON "\\ud800" escape decodes to one;
# it cannot be encoded as UTF-8, so saving or rendering it fails). Decoded JSON has no paired ones.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: Any) -> Any:
    """``value`` (decoded JSON) with every character PostgreSQL or UTF-8 cannot store, in its strings and
    keys, replaced by U+FFFD: one odd character must not cost a whole record."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [storable_text(v) for v in value]
    if isinstance(value, dict):
        return {storable_text(k): storable_text(v) for k, v in value.items()}
    return value


# Invisible bidi controls: embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069) and the marks
# (U+200E, U+200F, U+061C). In a name they reorder what is shown ("invoice\u202egpj.exe" reads "invoiceexe.jpg").
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def shown_name(value: str) -> str:
    """A name someone else will read (a video's title, an uploaded file's name) without the invisible bidi
    controls that could make it display as something it is not. Applied where the name is stored, so every
    screen, export and API answer shows the same, honest text."""
    return _BIDI_CONTROLS.sub("", value)


# Characters drawn as nothing that are no bidi control: the zero-width space, word joiner and BOM, the soft hyphen,
# the combining grapheme joiner, the Hangul fillers (letters by category, blank on screen), the Khmer inherent vowels
# and the Mongolian vowel separator. In a name they make a second name that reads as the first ("cat\u200b").
_DRAWN_AS_NOTHING = frozenset(
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2060\u2061\u2062\u2063\u2064\u3164\ufeff\uffa0"
)
# Joiners, variation selectors and tag characters shape the character before them (a Devanagari conjunct, an emoji
# sequence); after ASCII or at the start they shape nothing.
_JOINING = re.compile("[\u200c\u200d\ufe00-\ufe0f\U000e0020-\U000e007f]")


def invisible_character(value: str) -> str | None:
    """The first character of ``value`` that is drawn as nothing and is no bidi control (``shown_name`` handles
    those): one of ``_DRAWN_AS_NOTHING``, any other format character (category Cf), or a joiner, variation selector
    or tag character where it joins nothing (first, or after an ASCII character). None when there is none."""
    return next((ch for i, ch in enumerate(value) if _invisible_at(value, i)), None)


def _invisible_at(value: str, i: int) -> bool:
    ch = value[i]
    if _BIDI_CONTROLS.match(ch):
        return False
    if _JOINING.match(ch):
        return i == 0 or value[i - 1].isascii()
    return ch in _DRAWN_AS_NOTHING or unicodedata.category(ch) == "Cf"


def plain_name(value: str) -> str:
    """A name that tells one thing from others of its kind (an integration, a tag set, a review queue, a policy, a
    taxonomy's category or type) without its bidi controls (``shown_name``) and without the characters
    ``invisible_character`` finds: "platform-a\u200b" was a second integration that read as "platform-a"."""
    shown = shown_name(value)
    return "".join(ch for i, ch in enumerate(shown) if not _invisible_at(shown, i))


def character_named(ch: str) -> str:
    """``ch`` as a person can look it up: "U+200B ZERO WIDTH SPACE"."""
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def shown_text(value: str) -> str:
    """Free text someone else will read (a viewer comment, a reviewer's note, a reason to escalate or reject,
    version notes) without the invisible bidi controls, as ``shown_name``: "refund \u202e0011 2233" must not read
    as another number beside the verdict it explains. Applied where the text is stored."""
    return _BIDI_CONTROLS.sub("", value)


def shown_json(value: Any) -> Any:
    """``value`` (decoded JSON) with ``shown_text`` applied to every string in it, keys included: for JSON written
    before its text was cleaned where it is stored and that may not be rewritten (the append-only audit log's
    payloads), cleaned where it is shown instead."""
    if isinstance(value, str):
        return shown_text(value)
    if isinstance(value, list):
        return [shown_json(v) for v in value]
    if isinstance(value, dict):
        return {shown_json(k): shown_json(v) for k, v in value.items()}
    return value


def has_unstorable(value: Any) -> bool:
    """Whether any string in decoded JSON (keys included) holds a character ``storable_text`` would replace."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, list):
        return any(has_unstorable(v) for v in value)
    if isinstance(value, dict):
        return any(has_unstorable(k) or has_unstorable(v) for k, v in value.items())
    return False


def json_depth(value: Any, *, limit: int) -> int:
    """How deeply lists and objects nest in decoded JSON (a scalar is 0), counted without recursion
    and only up to ``limit + 1``: enough to refuse a too-deep document before anything walks it."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def row_id(raw: str | None) -> int | None:
    """A row id typed into a form or query string, or None when it is not one.

    Only ASCII digits count, at most 18 of them (a bigint): ``str.isdigit()`` is true for "²" and "１",
    which ``int()`` then refuses or reads as another number, and a longer number overflows the column.
    """
    raw = (raw or "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None
