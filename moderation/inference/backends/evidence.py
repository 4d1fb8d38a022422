"""The evidence/rule baseline: NOT a VLM.

It matches the policy's risk keywords against the text actually extracted from the video
(title, description, speech transcript, on-screen text) and writes a five-stage KuaiMod-style
chain-of-thought whose every claim cites the segment or frame it came from. It needs no weights,
so it runs anywhere, and it is the reference a VLM must beat.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from moderation.inference.backends import STAGES, BackendResult, ContentBundle, Segment, blm_rubric
from moderation.inference.cot import BlmRubric
from moderation.policies.spec import PolicySpec
from moderation.policies.taxonomy import NO_SEVERITY, SEVERITIES

# How much one keyword hit in each source counts.
SOURCE_WEIGHT = {"speech": 1.0, "title": 1.0, "on-screen text": 1.0, "description": 0.7}


@dataclass
class Hit:
    tag: str
    tag_name: str
    keyword: str
    source: str
    snippet: str
    segment_id: int | None = None
    start: float | None = None
    line: int | None = None  # speech imported as text (time unknown): its line on the screens (``seg-N``)


def _normalise(text: str) -> str:
    """Lowercase, single spaces, compatibility forms folded (NFKC: fullwidth "ＷｅＣｈａｔ" is WeChat) and no invisible
    format character (Unicode's category Cf: the bidi controls, zero-width spaces and joiners, the soft hyphen, the
    word joiner, BOM): "We\u2066Chat" and "We\u200bChat" read as WeChat. Only the bidi controls were dropped: an
    uploader's title split by a zero-width space, shown as the word, matched no keyword."""
    if not text.isascii():
        folded = unicodedata.normalize("NFKC", text)
        text = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return re.sub(r"\s+", " ", text.lower()).strip()


def _contains(text: str, keyword: str) -> bool:
    """``keyword`` in ``text`` (already ``_normalise``d); the keyword loses its format characters too, so one pasted
    into a policy with an invisible control still matches (and a Latin one still matches whole words only)."""
    kw = _normalise(keyword)
    if re.fullmatch(r"[a-z0-9 .'-]+", kw):
        # Latin keywords match on word boundaries so "vx" does not fire inside "vortex".
        return re.search(rf"(?<![a-z0-9]){re.escape(kw)}(?![a-z0-9])", text) is not None
    return kw in text


def _clip(text: str, n: int = 160) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def _findings(hits: list[Hit]) -> list[list[Hit]]:
    """Hits grouped by the passage they quote (source, segment, text), in order of first appearance."""
    groups: dict[tuple[str, int | None, int | None, str], list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.source, hit.segment_id, hit.line, hit.snippet), []).append(hit)
    return list(groups.values())


def _speech_evidence(hit: Hit) -> dict[str, Any] | None:
    """The evidence item citing a speech finding: the timed segment (the player seeks to it), or, for speech
    imported as text, its line (no time: none is known); None for a finding in any other text."""
    if hit.segment_id is not None and hit.start is not None:
        return {"kind": "segment", "ref": hit.segment_id, "label": f"«{hit.keyword}»", "t": hit.start}
    if hit.line is not None:
        return {"kind": "speech", "ref": hit.line, "label": f"speech «{hit.keyword}»"}
    return None


_OCR_TRIM = " \t|·•-_~=.,;:'\"`^*#<>()[]{}"


def clean_ocr(lines: list[str]) -> list[str]:
    """On-screen text worth quoting: whitespace collapsed, stray punctuation trimmed, fragments that are
    mostly symbols (OCR noise from textures and edges) or under two letters dropped, and each line
    once (also when another line already contains it)."""
    kept: list[str] = []
    for raw in lines:
        text = re.sub(r"\s+", " ", str(raw)).strip(_OCR_TRIM)
        compact = text.replace(" ", "")
        letters = sum(ch.isalnum() for ch in compact)
        if letters < 2 or letters < 0.6 * len(compact):
            continue
        key = text.lower()
        if any(key in k.lower() for k in kept):
            continue
        kept = [k for k in kept if k.lower() not in key]  # a longer reading replaces its fragments
        kept.append(text)
    return kept


class EvidenceBaseline:
    name = "evidence_baseline"

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]:
        results = [self.decide(c, policy.taxonomy, policy.safe_label) for c in contents]
        if policy.output_format == "blm":
            rubric = blm_rubric(policy)
            for result in results:
                result.scene, result.severity = _blm_levels(result, rubric)
        return results

    def decide(self, content: ContentBundle, taxonomy: list[dict[str, Any]], safe_label: str) -> BackendResult:
        tags = [
            (tag["key"], tag.get("name", tag["key"]), tag.get("keywords", [])) for m in taxonomy for tag in m["tags"]
        ]
        hits = self._find_hits(content, tags)

        scores: dict[str, float] = {}
        for hit in hits:
            scores[hit.tag] = scores.get(hit.tag, 0.0) + SOURCE_WEIGHT[hit.source]
        best = max(scores, key=lambda k: scores[k]) if scores else None
        names = {key: name for key, name, _ in tags}

        if best is not None:
            label, is_violation = best, True
            confidence = round(min(0.97, 0.55 + 0.4 * (1 - math.exp(-scores[best]))), 3)
        else:
            label, is_violation = safe_label, False
            text_amount = len(content.title) + sum(len(s.text) for s in content.segments)
            confidence = 0.75 if text_amount > 40 else 0.55

        texts = {
            "content_extraction": self._extraction(content),
            "analysis": self._analysis(hits),
            "intermediate_check": self._check(hits, scores, names),
            "user_feedback": feedback_stage_text(content.feedback, is_violation=is_violation),
            "final_judgment": (
                f"Violation: {label} ({names.get(label, label)}), confidence {confidence:.2f}."
                if is_violation
                else f"Non-violative ({safe_label}): no policy rule is supported by the extracted evidence; "
                f"confidence {confidence:.2f}."
            ),
        }
        evidence = {
            "content_extraction": [
                {"kind": "keyframe", "ref": f.id, "label": "frame", "t": f.timestamp}
                for f in content.frames
                if f.selected
            ][:8],
            "analysis": [ev for ev in (_speech_evidence(g[0]) for g in _findings(hits)) if ev is not None],
        }
        cot = [
            {"key": key, "title": title, "text": texts[key], "evidence": evidence.get(key, [])} for key, title in STAGES
        ]
        return BackendResult(
            label=label,
            is_violation=is_violation,
            confidence=confidence,
            cot=cot,
            raw_output=json.dumps({"label": label, "scores": scores}, ensure_ascii=False),
        )

    @staticmethod
    def _find_hits(content: ContentBundle, tags: list[tuple[str, str, list[str]]]) -> list[Hit]:
        sources: list[tuple[str, str, Segment | None]] = [
            ("title", content.title, None),
            ("description", content.description, None),
            *[("on-screen text", text, None) for text in clean_ocr(content.ocr)],
            *[("speech", s.text, s) for s in content.segments],
        ]
        hits: list[Hit] = []
        for tag, tag_name, keywords in tags:
            for source, raw, seg in sources:
                text = _normalise(raw)
                if not text:
                    continue
                for kw in keywords:
                    if kw and _contains(text, kw):
                        hit = Hit(tag, tag_name, kw, source, _clip(raw))
                        if seg is not None:
                            hit.segment_id, hit.start = seg.id, seg.start
                            hit.line = seg.index if seg.start is None else None
                        hits.append(hit)
        return hits

    @staticmethod
    def _extraction(content: ContentBundle) -> str:
        speech = " ".join(s.text.strip() for s in content.segments)
        selected = sum(1 for f in content.frames if f.selected)
        parts = [f"Title: «{_clip(content.title) or '(none)'}»."]
        if content.description:
            parts.append(f"Description: «{_clip(content.description)}».")
        if speech:
            lang = f", language {content.language}" if content.language else ""
            count = len(content.segments)
            parts.append(f"Speech ({count} segment{'' if count == 1 else 's'}{lang}): «{_clip(speech, 400)}».")
        else:
            parts.append("Speech: none detected.")
        ocr = clean_ocr(content.ocr)
        if ocr:
            parts.append(f"On-screen text: «{_clip(' | '.join(ocr), 300)}».")
        parts.append(f"Keyframes: {len(content.frames)} sampled, {selected} selected for review.")
        return " ".join(parts)

    @staticmethod
    def _analysis(hits: list[Hit]) -> str:
        if not hits:
            return "No risk keyword of any rule appears in the title, description, on-screen text or speech."
        # One finding per passage: a passage that matches several keywords (or rules) is quoted once.
        lines = []
        for group in _findings(hits)[:8]:
            first = group[0]
            where = f"{first.source} at {first.start:.1f}s" if first.start is not None else first.source
            keywords = ", ".join(f"'{k}'" for k in dict.fromkeys(h.keyword for h in group))
            rules = " and ".join(dict.fromkeys(h.tag_name for h in group))
            plural = "s" if "," in keywords else ""
            lines.append(
                f"The {where} says «{first.snippet}», matching the risk keyword{plural} {keywords} of {rules}."
            )
        more = len(_findings(hits)) - 8
        if more > 0:
            lines.append(f"{more} more passage{'s' if more > 1 else ''} match as well.")
        return " ".join(lines)

    @staticmethod
    def _check(hits: list[Hit], scores: dict[str, float], names: dict[str, str]) -> str:
        if not hits:
            return "Nothing to cross-check: no rule matched. Visual content is not assessed by this baseline."
        parts = []
        for tag, score in sorted(scores.items(), key=lambda kv: -kv[1]):
            sources = sorted({h.source for h in hits if h.tag == tag})
            parts.append(f"{names.get(tag, tag)}: score {score:.1f} from {', '.join(sources)}.")
        consistent = "consistent across sources" if len({h.source for h in hits}) > 1 else "from a single source"
        return " ".join(parts) + f" The evidence is {consistent}; visual content is not assessed by this baseline."


def feedback_stage_text(stats: dict[str, Any], *, is_violation: bool) -> str:
    """Stage 4 (user feedback): states the real user-feedback numbers; the baseline reports them but does
    not act on them. Also used to re-derive the stage on the review screen when feedback arrived after
    the decision."""
    if not stats:
        return "No user-feedback events (reports, appeals, likes) are recorded for this video yet."

    def pct(key: str) -> str:
        value = stats.get(key)
        return f"{value:.1%}" if isinstance(value, int | float) else "n/a (no views)"

    views = int(stats.get("views", 0) or 0)
    parts = [
        f"{views} views",
        f"{stats.get('reports', 0)} reports (report rate {pct('report_rate')})",
        f"{stats.get('likes', 0)} likes (like rate {pct('like_rate')})",
        f"{stats.get('dislikes', 0)} dislikes (dislike rate {pct('dislike_rate')})",
        f"{stats.get('shares', 0)} shares",
    ]
    text = "User feedback: " + ", ".join(parts) + "."
    reasons = stats.get("top_report_reasons") or []
    if reasons:
        text += " Most common report reasons: " + "; ".join(f"«{_clip(str(r), 60)}»" for r in reasons) + "."
    appeals = int(stats.get("appeals", 0) or 0)
    if appeals:
        text += (
            f" Appeals: {appeals} ({stats.get('appeals_overturned', 0)} overturned, "
            f"{stats.get('appeals_upheld', 0)} upheld, {stats.get('appeals_pending', 0)} pending)."
        )
    report_rate = stats.get("report_rate")
    if not is_violation and isinstance(report_rate, int | float) and report_rate >= 0.05:
        text += " Users report this video often although no rule matched; a human should look."
    if is_violation and stats.get("appeals_overturned"):
        text += " An appeal against moderating this video succeeded; the verdict may be wrong."
    return text


def _blm_levels(result: BackendResult, rubric: BlmRubric) -> tuple[str, str]:
    """BLM-Guard's scene and severity for a baseline verdict: the type's scene, and the severity its
    evidence score supports (stronger evidence, higher severity), among those the type allows."""
    if not result.is_violation or result.label not in rubric.types:
        return "", NO_SEVERITY
    scene, allowed = rubric.types[result.label]
    low, medium, high = order = SEVERITIES
    wanted = high if result.confidence >= 0.85 else medium if result.confidence >= 0.7 else low
    candidates = [s for s in order if s in allowed] or list(order)
    # the allowed severity nearest to the one the evidence supports
    best = min(candidates, key=lambda s: abs(order.index(s) - order.index(wanted)))
    return scene, best
