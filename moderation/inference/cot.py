"""Chain-of-thought formats: one renderer and one parser per format, shared by inference,
training data and evaluation so the text a model is trained on is the text it is parsed from.

* ``kuaimod``: KuaiMod's five stages, one header per line::

      [Content extraction] ...
      [Analysis] ...
      [Intermediate check] ...
      [User-feedback analysis] ...
      [Final judgment] label: 引导私下交易 | confidence: 0.82

* ``blm``: BLM-Guard's ``<think>`` visual location → risk screening → causal analysis ``</think>``
  ``<answer>`` scene + violation type + severity ``</answer>``.

Stages may cite evidence as ``[frame:12]``, ``[patch:7]`` or ``[t=12.5s]``. Parsing reads only the
output's structure: text a video carried (and the model may quote) cannot add a stage or change
the verdict, because the verdict comes from the last, required stage and must be a known label.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from moderation.policies.taxonomy import ALL_SEVERITIES

KUAIMOD_STAGES: list[tuple[str, str]] = [
    ("content_extraction", "Content extraction"),
    ("analysis", "Analysis"),
    ("intermediate_check", "Intermediate check"),
    ("user_feedback", "User-feedback analysis"),
    ("final_judgment", "Final judgment"),
]
BLM_THINK_STAGES: list[tuple[str, str]] = [
    ("visual_location", "Visual location"),
    ("risk_screening", "Risk screening"),
    ("causal_analysis", "Causal analysis"),
]
FORMATS = ("kuaimod", "blm")

_EVIDENCE = re.compile(r"\[(frame|patch):(\d{1,9})\]|\[t=(\d{1,7}(?:\.\d{1,6})?)s\]")


class CotParseError(ValueError):
    """The model's output does not follow the format; the raw text is kept with this message."""


BLM_SEVERITIES = ALL_SEVERITIES  # "none" only with the safe answer (moderation.policies.taxonomy)


@dataclass(frozen=True)
class BlmRubric:
    """BLM-Guard's three levels as the parser checks them: each violation type's scene and allowed severities."""

    safe_label: str
    types: dict[str, tuple[str, frozenset[str]]]


@dataclass
class ParsedCot:
    label: str
    stages: list[dict[str, Any]]
    confidence: float | None = None
    scene: str = ""
    severity: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def evidence_in(text: str) -> list[dict[str, Any]]:
    """Evidence citations in a stage's text, in order, without duplicates."""
    found: list[dict[str, Any]] = []
    for kind, ref, t in _EVIDENCE.findall(text):
        item: dict[str, Any] = (
            {"kind": kind, "ref": int(ref), "label": f"{kind} {ref}"}
            if kind
            else {"kind": "time", "ref": None, "label": f"{float(t):.1f}s", "t": float(t)}
        )
        if item not in found:
            found.append(item)
    return found


# --- KuaiMod ---------------------------------------------------------------------------------


def render_kuaimod(stage_texts: dict[str, str], label: str, confidence: float | None = None) -> str:
    lines = []
    for key, title in KUAIMOD_STAGES[:-1]:
        lines.append(f"[{title}] {_one_line(stage_texts.get(key, ''))}")
    verdict = f"label: {label}"
    if confidence is not None:
        verdict += f" | confidence: {confidence:.2f}"
    reason = _one_line(stage_texts.get("final_judgment", ""))
    if reason:
        verdict += f" | reason: {reason}"
    lines.append(f"[Final judgment] {verdict}")
    return "\n".join(lines)


_KUAIMOD_HEADER = re.compile(r"^\s*\[(" + "|".join(re.escape(t) for _, t in KUAIMOD_STAGES) + r")\]\s*", re.MULTILINE)


def parse_kuaimod(text: str, labels: Container[str]) -> ParsedCot:
    headers = list(_KUAIMOD_HEADER.finditer(text))
    titles = [m.group(1) for m in headers]
    expected = [t for _, t in KUAIMOD_STAGES]
    if titles != expected:
        raise CotParseError(f"expected the five stages {expected} in order, found {titles or 'none'}")
    stages: list[dict[str, Any]] = []
    for i, (key, title) in enumerate(KUAIMOD_STAGES):
        start = headers[i].end()
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        body = text[start:end].strip()
        stages.append({"key": key, "title": title, "text": body, "evidence": evidence_in(body)})
    verdict = stages[-1]["text"]
    fields = dict(_kv(part) for part in verdict.split("|") if ":" in part)
    label = fields.get("label", "").strip()
    if label not in labels:
        raise CotParseError(f"final judgment label {label!r} is not a label of this policy")
    confidence = _confidence(fields.get("confidence"))
    return ParsedCot(label=label, stages=stages, confidence=confidence)


# --- BLM-Guard -------------------------------------------------------------------------------


def render_blm(stage_texts: dict[str, str], scene: str, violation: str, severity: str) -> str:
    think = "\n".join(f"{title}: {_one_line(stage_texts.get(key, ''))}" for key, title in BLM_THINK_STAGES)
    answer = json.dumps({"scene": scene, "violation_type": violation, "severity": severity}, ensure_ascii=False)
    return f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"


_BLM = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)


def parse_blm(
    text: str, labels: Container[str], scenes: set[str] | None = None, rubric: BlmRubric | None = None
) -> ParsedCot:
    """Parse BLM-Guard output. With a ``rubric`` the answer is checked level by level: the violation
    type's scene (filled in when the model leaves it out) and a severity that type allows; the safe
    answer takes no severity other than "none"."""
    match = _BLM.match(text)
    if match is None:
        raise CotParseError("expected <think>…</think> followed by <answer>…</answer> and nothing else")
    think, answer = match.group("think"), match.group("answer").strip()
    stages: list[dict[str, Any]] = []
    header = re.compile(r"^\s*(" + "|".join(re.escape(t) for _, t in BLM_THINK_STAGES) + r")\s*[:：]", re.MULTILINE)
    heads = list(header.finditer(think))
    if [m.group(1) for m in heads] != [t for _, t in BLM_THINK_STAGES]:
        raise CotParseError("the <think> block must hold visual location, risk screening and causal analysis")
    for i, (key, title) in enumerate(BLM_THINK_STAGES):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(think)
        body = think[heads[i].end() : end].strip()
        stages.append({"key": key, "title": title, "text": body, "evidence": evidence_in(body)})
    if answer.startswith("{"):
        data = _json_object(answer)
    else:  # "scene: …; violation_type: …; severity: …"
        data = dict(_kv(p) for p in re.split(r"[;\n|]", answer) if ":" in p)
    violation = str(data.get("violation_type", data.get("violation", ""))).strip()
    scene = str(data.get("scene", "")).strip()
    severity = str(data.get("severity", "")).strip().lower()
    if violation not in labels:
        raise CotParseError(f"violation type {violation!r} is not a label of this policy")
    if scenes is not None and scene and scene not in scenes:
        raise CotParseError(f"scene {scene!r} is not a scene of this policy")
    if severity and severity not in BLM_SEVERITIES:
        raise CotParseError(f"severity {severity!r} is not one of {', '.join(BLM_SEVERITIES)}")
    if rubric is not None:
        scene, severity = _check_levels(rubric, scene, violation, severity)
    stages.append({"key": "answer", "title": "Answer", "text": answer, "evidence": []})
    return ParsedCot(label=violation, stages=stages, scene=scene, severity=severity)


def _check_levels(rubric: BlmRubric, scene: str, violation: str, severity: str) -> tuple[str, str]:
    if violation == rubric.safe_label:
        if severity not in ("", "none"):
            raise CotParseError(f"the safe answer {violation!r} cannot have severity {severity!r}")
        return "", "none"
    if violation not in rubric.types:
        raise CotParseError(f"violation type {violation!r} is not a type of this policy")
    own_scene, allowed = rubric.types[violation]
    if scene and scene != own_scene:
        raise CotParseError(f"violation type {violation!r} belongs to scene {own_scene!r}, not {scene!r}")
    if not severity or severity == "none":
        raise CotParseError(f"a violation needs a severity ({', '.join(sorted(allowed))} for {violation!r})")
    if severity not in allowed:
        raise CotParseError(f"severity {severity!r} is not allowed for {violation!r} ({', '.join(sorted(allowed))})")
    return own_scene, severity


def _json_object(text: str) -> dict[str, Any]:
    """``text`` as a JSON object. Anything else, hostile JSON included (deep nesting, huge numbers), is a
    CotParseError, never a crash."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CotParseError(f"not valid JSON: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:
        raise CotParseError(f"unreadable JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise CotParseError("expected a JSON object")
    return data


def parse(
    text: str, fmt: str, labels: Container[str], scenes: set[str] | None = None, rubric: BlmRubric | None = None
) -> ParsedCot:
    if fmt == "blm":
        return parse_blm(text, labels, scenes, rubric)
    return parse_kuaimod(text, labels)


def render_stages(stages: list[dict[str, Any]], label: str, fmt: str = "kuaimod", **extra: Any) -> str:
    """Render stored stages (a Decision's or a correction's ``cot``) back into the model's format."""
    texts = {s["key"]: s.get("text", "") for s in stages}
    if fmt == "blm":
        return render_blm(texts, extra.get("scene", ""), label, extra.get("severity", ""))
    return render_kuaimod(texts, label, extra.get("confidence"))


def _kv(part: str) -> tuple[str, str]:
    key, _, value = part.partition(":")
    return key.strip().lower(), value.strip()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def _confidence(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


# --- Structured (JSON) output, for engines with guided decoding --------------------------------


def json_schema(fmt: str, labels: set[str], scenes: set[str] | None = None) -> dict[str, Any]:
    """A JSON schema whose instances map one-to-one onto the text format (for guided decoding)."""
    if fmt == "blm":
        props: dict[str, Any] = {key: {"type": "string"} for key, _ in BLM_THINK_STAGES}
        props["scene"] = {"type": "string", **({"enum": sorted(scenes)} if scenes else {})}
        props["violation_type"] = {"type": "string", "enum": sorted(labels)}
        props["severity"] = {"type": "string", "enum": list(BLM_SEVERITIES)}
    else:
        props = {key: {"type": "string"} for key, _ in KUAIMOD_STAGES[:-1]}
        props["label"] = {"type": "string", "enum": sorted(labels)}
        props["confidence"] = {"type": "number", "minimum": 0, "maximum": 1}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def text_from_json(raw: str, fmt: str) -> str:
    """Turn a guided-decoding JSON answer into the canonical text format (then ``parse`` it)."""
    try:
        data = _json_object(raw)
    except CotParseError as exc:
        raise CotParseError(f"output is {exc}") from exc
    texts = {k: str(v) for k, v in data.items() if isinstance(v, str)}
    if fmt == "blm":
        return render_blm(texts, texts.get("scene", ""), texts.get("violation_type", ""), texts.get("severity", ""))
    confidence = data.get("confidence")
    number = isinstance(confidence, int | float) and not isinstance(confidence, bool)
    return render_kuaimod(texts, texts.get("label", ""), _confidence(str(confidence)) if number else None)
