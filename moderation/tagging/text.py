"""Pure text helpers of the tagging wing: tag-name hygiene, the n-gram search keys, and finding tag
names in a video's text segments. No database, no models: the evaluation and the services share them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from workbench.text import character_named, invisible_character, shown_name

MAX_TAG_CHARS = 100
# A tag's aliases: a few spellings and synonyms. Unbounded, one 50 MB import line held millions of them (the
# duplicate check was quadratic: the import ran for days on the default queue's worker).
MAX_TAG_ALIASES = 100
_ASCII_WORD = re.compile(r"[0-9A-Za-z]")


def tag_name_problem(name: str) -> str | None:
    """Why ``name`` (already stripped) cannot be a tag name, or None."""
    if not name:
        return "nothing typed"  # a form's blank field ("Tag name: blank line." read as an import's wording)
    if "\x00" in name:
        return "contains a NUL character"
    if len(name) > MAX_TAG_CHARS:
        return f"{len(name):,} characters; a tag name has at most {MAX_TAG_CHARS}"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        return "contains a control character or a lone surrogate"
    if shown_name(name) != name:  # a name must not display as something it is not, as a video's title
        return "contains an invisible bidi control (U+202A–U+202E, U+2066–U+2069, LRM, RLM or ALM)"
    invisible = invisible_character(name)
    if invisible is not None:  # "cat\u200b" read as "cat" beside it, and matched no video's text
        return (
            f"contains an invisible character ({character_named(invisible)}): it would read as "
            f"“{''.join(ch for ch in name if invisible_character(ch) is None)}” and be another word"
        )
    return None


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


# Why "Kitty" and "kitty" are one alias: how a tag's words are matched in a video's text (``normalise``).
ALIAS_REPEAT_WHY = "aliases match ignoring case and width"


def alias_repeats(aliases: Iterable[str], *, held: Iterable[str] = ()) -> tuple[list[str], list[tuple[str, str]]]:
    """One tag's ``aliases`` with the spellings that differ from an earlier one (or from one the tag ``held``)
    only in case or width left out: they are one word once normalised, as names are. Returns the aliases kept
    and, for each left out, (that spelling, the one kept)."""
    first: dict[str, str] = {}
    for alias in held:
        first.setdefault(normalise(alias), alias)
    kept: list[str] = []
    repeats: list[tuple[str, str]] = []
    for alias in aliases:
        key = normalise(alias)
        if key in first and first[key] != alias:
            repeats.append((alias, first[key]))
            continue
        first.setdefault(key, alias)
        kept.append(alias)
    return kept, repeats


def same_word(word: str, words: Iterable[str]) -> str | None:
    """The first of ``words`` that is ``word`` once normalised (the same spelling, or one differing only in case or
    width), or None."""
    key = normalise(word)
    return next((w for w in words if normalise(w) == key), None)


def search_grams(names: Iterable[str]) -> list[str]:
    """The unigrams and bigrams of every (normalised) name: what the GIN index stores."""
    grams: set[str] = set()
    for name in names:
        s = normalise(name)
        grams.update(ch for ch in s if not ch.isspace())
        grams.update(s[i : i + 2] for i in range(len(s) - 1) if not s[i : i + 2].isspace())
    return sorted(grams)


def query_grams(query: str) -> list[str]:
    """The grams every tag matching ``query`` as a substring must hold."""
    s = normalise(query)
    if len(s) <= 1:
        return [s] if s and not s.isspace() else []
    return sorted({s[i : i + 2] for i in range(len(s) - 1) if not s[i : i + 2].isspace()})


# Up to this many letters a type-ahead query is the start of a word, not a piece to find inside one (``short_query``).
SHORT_QUERY_CHARS = 2


def short_query(query: str) -> bool:
    """Whether ``query`` (normalised, not blank) is too short to search inside names: one or two characters of an
    alphabetic script. One or two Latin letters sit inside most words ("a" matched 猫 through "cat", 旅行 through
    "travel", 风景 through "landscape": nearly every tag of the demo vocabulary, through its English aliases), so such
    a query matches where a name or an alias starts. A wide (CJK, kana, hangul) character is a word or a morpheme of
    its own: 游 finds 手游 and 网游 on purpose, as 美食 finds 街头美食, so any query holding one is still searched as a
    substring, as is anything longer than two characters."""
    if len(query) > SHORT_QUERY_CHARS:
        return False
    return not any(unicodedata.east_asian_width(ch) in ("W", "F") for ch in query)


@dataclass(frozen=True)
class Segment:
    """One piece of a video's text: ``field`` is title / description / ocr / asr; ``index`` the
    segment's position (transcript segment index for speech), ``start`` its time when known."""

    field: str
    index: int
    text: str
    start: float | None = None


@dataclass
class TextHit:
    tag_id: int
    fields: dict[str, int]
    evidence: list[dict[str, object]]
    hashtags: int = 0  # how many of the occurrences stand inside a ``#hashtag`` (the uploader's own label)
    # occurrences not inside a longer match of another tag in the same segment (牛 in 牛仔裤 is covered)
    uncovered: int = 0


def in_hashtag(s: str, i: int) -> bool:
    """Whether position ``i`` of ``s`` lies inside a ``#hashtag``: a ``#`` earlier in the same word
    (hashtags end at white space or at the next ``#``, which starts another)."""
    hash_at = s.rfind("#", 0, i + 1)
    if hash_at < 0:
        return False
    return not any(ch.isspace() for ch in s[hash_at:i])


def name_prefixes(lexicon: Iterable[str]) -> frozenset[str]:
    """Every prefix of every lexicon key: ``find_tag_names`` stops extending a substring that starts no name."""
    return frozenset(key[:m] for key in lexicon for m in range(1, len(key) + 1))


def find_tag_names(
    segments: list[Segment], lexicon: Mapping[str, int], max_len: int, prefixes: Container[str] | None = None
) -> dict[int, TextHit]:
    """Every tag whose name or alias (keys of ``lexicon``, normalised) occurs in the segments.

    Chinese has no spaces, so every substring up to ``max_len`` characters is looked up (a dict
    probe each: linear in the text, independent of the vocabulary size); with ``prefixes``
    (``name_prefixes(lexicon)``) a substring that starts no name is not extended, the same hits
    for a few probes per position instead of ``max_len``. A name written in Latin letters or digits
    must stand as its own word ("DJ" is not found inside "DJI")."""
    hits: dict[int, TextHit] = {}
    for seg in segments:
        s = normalise(seg.text)
        n = len(s)
        spans: list[tuple[int, int, int]] = []
        for i in range(n):
            for j in range(i + 1, min(n, i + max_len) + 1):
                piece = s[i:j]
                if prefixes is not None and piece not in prefixes:
                    break
                tag_id = lexicon.get(piece)
                if tag_id is None:
                    continue
                if _ASCII_WORD.match(s[i]) and i > 0 and _ASCII_WORD.match(s[i - 1]):
                    continue
                if _ASCII_WORD.match(s[j - 1]) and j < n and _ASCII_WORD.match(s[j]):
                    continue
                spans.append((i, j, tag_id))
                hit = hits.setdefault(tag_id, TextHit(tag_id=tag_id, fields={}, evidence=[]))
                hit.fields[seg.field] = hit.fields.get(seg.field, 0) + 1
                if in_hashtag(s, i):
                    hit.hashtags += 1
                if len(hit.evidence) < 3:
                    lo, hi = max(0, i - 20), min(len(seg.text), j + 20)
                    hit.evidence.append(
                        {
                            "field": seg.field,
                            "segment": seg.index,
                            "start": seg.start,
                            "match": seg.text[i:j],
                            "text": seg.text[lo:hi],
                        }
                    )
        # A match is covered by another tag's longer one around it, which starts at most ``max_len`` before its end:
        # looked up by start. Compared with every match of the segment, a text of one word repeated took time in
        # the square of its matches (40 KB of "cat " 45 s of a media worker).
        by_start: dict[int, list[tuple[int, int]]] = {}
        for a, b, t in spans:
            by_start.setdefault(a, []).append((b, t))
        for i, j, tag_id in spans:
            if not any(
                j <= b and b - a > j - i and t != tag_id
                for a in range(max(0, j - max_len), i + 1)
                for b, t in by_start.get(a, ())
            ):
                hits[tag_id].uncovered += 1
    return hits


def split_segments(*, title: str, description: str = "", ocr: str = "", asr: str = "") -> list[Segment]:
    """KuaiMod-style text (OCR / ASR segments joined with ``|``) as segments."""
    segs = [Segment("title", 0, title.strip())] if title.strip() else []
    if description.strip():
        segs.append(Segment("description", 0, description.strip()))
    for field, joined in (("ocr", ocr), ("asr", asr)):
        for i, part in enumerate(p.strip() for p in joined.split("|")):
            if part:
                segs.append(Segment(field, i, part))
    return segs


def embedding_text(segments: list[Segment], max_chars: int = 512) -> str:
    """The text the encoder reads for a video: title first, then description, OCR, speech —
    de-duplicated (OCR repeats a caption on every frame), clipped."""
    seen: set[str] = set()
    parts: list[str] = []
    for seg in segments:
        t = seg.text.strip()
        if t and t not in seen:
            seen.add(t)
            parts.append(t)
    return " ".join(parts)[:max_chars]


_PLACEHOLDER_TITLES = {"null", "none", "nan", "undefined"}
# A hashtag phrase runs from ``#`` to white space, the next ``#`` or an ``@`` mention (as ``in_hashtag`` reads them).
_HASHTAG = re.compile(r"#([^#@\s]+)")
_HASHTAG_TRAILING = "，。！？、；：,.!?;:~…·\"'“”‘’()（）【】[]《》"
HASHTAG_PHRASES = 8  # at most this many a video
HASHTAG_CHARS = 24  # a longer phrase is clipped


def hashtag_phrases(segments: list[Segment]) -> list[str]:
    """The uploader's ``#`` phrases in the title and description (#搞笑段子, #动漫cos), in order, trailing punctuation
    stripped, de-duplicated once normalised, at least two characters, at most ``HASHTAG_PHRASES`` of them, each
    clipped at ``HASHTAG_CHARS``: each is embedded on its own for the hashtag view (``ranking.generate``)."""
    phrases: list[str] = []
    seen: set[str] = set()
    for seg in segments:
        if seg.field not in ("title", "description"):
            continue
        for raw in _HASHTAG.findall(seg.text):
            phrase = raw.strip(_HASHTAG_TRAILING)[:HASHTAG_CHARS]
            key = normalise(phrase)
            if len(phrase) < 2 or key in seen:
                continue
            seen.add(key)
            phrases.append(phrase)
            if len(phrases) >= HASHTAG_PHRASES:
                return phrases
    return phrases


def title_text(segments: list[Segment], max_chars: int = 128) -> str:
    """The title alone (the second text the encoder reads: uploaders put their hashtags there);
    empty when there is none or it is an exporter's placeholder such as ``null``."""
    parts = [seg.text.strip() for seg in segments if seg.field == "title" and seg.text.strip()]
    text = " ".join(p for p in parts if normalise(p) not in _PLACEHOLDER_TITLES)
    return text[:max_chars]
