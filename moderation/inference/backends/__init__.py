"""Model backends behind one small interface.

A backend turns a :class:`ContentBundle` (what was extracted from a video) and a policy version
into a :class:`BackendResult`: a label and a chain-of-thought in KuaiMod's five stages.
Only the evidence baseline lives here for now; VLM backends import torch/vllm inside their
own modules so the web process never loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

STAGES: list[tuple[str, str]] = [
    ("content_extraction", "Content extraction"),
    ("analysis", "Analysis"),
    ("intermediate_check", "Intermediate check"),
    ("user_feedback", "User-feedback analysis"),
    ("final_judgment", "Final judgment"),
]


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str


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


class Backend(Protocol):
    name: str

    def decide(self, content: ContentBundle, taxonomy: list[dict[str, Any]], safe_label: str) -> BackendResult: ...


def get_backend(name: str) -> Backend:
    if name == "evidence_baseline":
        from moderation.inference.backends.evidence import EvidenceBaseline

        return EvidenceBaseline()
    raise ValueError(f"Unknown inference backend '{name}'")
