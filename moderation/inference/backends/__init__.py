"""Model backends behind one small interface.

A backend turns a :class:`ContentBundle` (what was extracted from a video) and a policy version
into a :class:`BackendResult`: a label and a chain-of-thought in the policy version's output format
(KuaiMod's five stages, or BLM-Guard's <think>/<answer> with a scene and a severity).
The evidence baseline (evidence.py), cascade stage 1 (cascade_stage1.py), transformers
(transformers_backend.py) and vLLM offline or OpenAI-server (vllm_backend.py) live here, chosen by
``get_backend``; the heavy ones import torch/vllm inside their own modules so the web process never
loads them. ``PolicySpec`` (what a backend reads of a policy) belongs to moderation.policies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

from moderation.inference.cot import KUAIMOD_STAGES as STAGES
from moderation.inference.cot import BlmRubric, CotParseError, parse
from moderation.policies.spec import PolicySpec
from workbench.text import storable_text

__all__ = ["STAGES"]


@dataclass(frozen=True)
class Segment:
    """A stretch of speech. ``start``/``end`` None: its time is unknown (speech imported as text, e.g. a KuaiMod
    record's ASR field, ``untimed_segments``), never a made-up 0.0 s. ``id`` is the stored transcript segment's
    (None for imported speech), ``index`` its place in the transcript: what the screens' ``seg-N`` anchors name."""

    id: int | None
    start: float | None
    end: float | None
    text: str
    index: int | None = None


def untimed_segments(text: str) -> list[Segment]:
    """Speech imported as text, its parts joined with "|" (a KuaiMod record's ASR field, ``Video.asr_text``): one
    segment a part, time unknown. The index counts every part, the empty ones too, as the screens' speech lines do
    (``moderation.media.selectors.video_speech_lines``), so evidence citing a part lands on its line."""
    return [Segment(None, None, None, part, index=i) for i, part in enumerate(text.split("|")) if part.strip()]


@dataclass(frozen=True)
class Frame:
    id: int
    timestamp: float
    selected: bool


@dataclass(frozen=True)
class ContentBundle:
    title: str
    description: str
    uploader: str
    segments: list[Segment]
    frames: list[Frame]
    language: str = ""
    ocr: list[str] = field(default_factory=list)
    # Files of the selected keyframes, for backends that look at images.
    image_paths: list[str] = field(default_factory=list)
    # User-feedback statistics (moderation.feedback.selectors.feedback_prompt_stats); empty when none.
    feedback: dict[str, Any] = field(default_factory=dict)
    # The cover plus selected keyframes the item offers (``Video.sampled_frames``); 0 when unknown.
    sampled_frames: int = 0
    # Tag2CoT drafts: the label a human gave, which the model is asked to explain. Empty for decisions.
    target_label: str = ""


@dataclass
class BackendResult:
    label: str
    is_violation: bool
    confidence: float
    cot: list[dict[str, Any]]
    raw_output: str = ""
    parse_error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float | None = None  # set by batched backends: the batch's time per item
    # Tokens of the item's content cut from the prompt to fit the model's context (0: the whole prompt was read).
    prompt_cut_tokens: int = 0
    # Cascade stage 1 only: how unsure it is, and whether the item must go to the VLM.
    uncertainty: float | None = None
    escalate: bool = False
    p_violative: float | None = None  # calibrated P(violative)
    # BLM-Guard output only: the answer's risk scene and severity, checked against the policy.
    scene: str = ""
    severity: str = ""


class Backend(Protocol):
    name: str

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]: ...


@dataclass
class Generation:
    """One free-text generation (prompts other than the moderation CoT: content tags)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    prompt_cut_tokens: int = 0  # tokens of the prompt's content cut to fit the model's context


VLM_BACKENDS = ("transformers", "vllm")


class LoadedOnce:
    """A backend whose model is loaded once per worker process and reused (``cached``).

    Each subclass declares its own ``_cache`` and ``_lock``; the lock keeps two threads from loading
    the same model twice.
    """

    _cache: ClassVar[dict[tuple[str, str], Any]]
    _lock: ClassVar[threading.Lock]

    def __init__(self, base_model: str, adapter_path: str = "") -> None:
        raise NotImplementedError  # each backend loads its model here

    @classmethod
    def cached(cls, base_model: str, adapter_path: str = "") -> Self:
        key = (base_model, adapter_path)
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls(base_model, adapter_path)
            loaded: Self = cls._cache[key]
            return loaded


def get_backend(name: str, *, base_model: str = "", adapter_path: str = "") -> Backend:
    """The backend for a model version; heavy libraries are imported by the backend module only.

    An adapter kept in object storage (``stored:…``) is fetched into this node's cache first.
    """
    if adapter_path:
        from workbench.storage import resolve_stored_path

        adapter_path = resolve_stored_path(adapter_path)
    if name == "evidence_baseline":
        from moderation.inference.backends.evidence import EvidenceBaseline

        return EvidenceBaseline()
    if name == "transformers":
        from moderation.inference.backends.transformers_backend import TransformersBackend

        return TransformersBackend.cached(base_model, adapter_path)
    if name == "cascade_stage1":
        from moderation.inference.backends.cascade_stage1 import CascadeStage1Backend

        return CascadeStage1Backend(base_model)
    if name == "vllm":
        from moderation.inference.backends.vllm_backend import vllm_backend_for

        return vllm_backend_for(base_model, adapter_path)
    raise ValueError(f"Unknown inference backend '{name}'")


def blm_rubric(policy: PolicySpec) -> BlmRubric:
    """The BLM-Guard parser's view of a policy: each violation type's scene and allowed severities."""
    return BlmRubric(safe_label=policy.safe_label, types=policy.violation_types())


def result_from_text(text: str, policy: PolicySpec, prompt_tokens: int, completion_tokens: int) -> BackendResult:
    """Parse one generation; invalid output is kept raw with the reason, never raised."""
    text = storable_text(text)  # NUL or a lone surrogate cannot be stored; keep the rest as it was
    try:
        rubric = blm_rubric(policy) if policy.output_format == "blm" else None
        parsed = parse(text, policy.output_format, policy.labels(), policy.scenes(), rubric)
    except CotParseError as exc:
        return unparsed_result(text, exc, prompt_tokens, completion_tokens)
    confidence = parsed.confidence if parsed.confidence is not None else 0.5
    return BackendResult(
        label=parsed.label,
        is_violation=parsed.label != policy.safe_label,
        confidence=confidence,
        cot=parsed.stages,
        raw_output=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        scene=parsed.scene,
        severity=parsed.severity,
    )


def unparsed_result(raw: str, error: CotParseError, prompt_tokens: int, completion_tokens: int) -> BackendResult:
    """A generation that did not parse: no label, the output kept raw with the reason."""
    return BackendResult(
        label="",
        is_violation=False,
        confidence=0.0,
        cot=[],
        raw_output=raw,
        parse_error=str(error),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
