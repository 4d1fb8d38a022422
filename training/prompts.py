"""Text renderings used to build preference pairs: the prompt a model sees and a CoT as text.

The prompt builder lives here until inference owns a shared one; both sides must render the
same prompt for a trained adapter to see at serving time what it saw in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from moderation.inference.backends import STAGES
from moderation.models import Decision

# Transcripts can be long; the prompt keeps the start, which carries most of the signal.
MAX_TRANSCRIPT_CHARS = 4000

INSTRUCTION = (
    "You are a short-video content moderator. Read the video's content below and judge it against the "
    "policy. Answer in five stages: " + ", ".join(title for _key, title in STAGES) + ". "
    "The final judgment is exactly one label from the list."
)


def decision_prompt(decision: Decision) -> str:
    """The text prompt for the video a decision was made about, under the decision's policy version."""
    video = decision.video
    policy_version = decision.policy_version
    labels = "\n".join(f"- {key} ({name})" for key, name in policy_version.label_names().items())
    # .all() keeps a prefetch usable; segments are ordered by index by default.
    transcript = " ".join(s.text.strip() for s in video.segments.all() if s.text.strip())
    if len(transcript) > MAX_TRANSCRIPT_CHARS:
        transcript = transcript[:MAX_TRANSCRIPT_CHARS] + " …"
    return (
        f"{INSTRUCTION}\n\n"
        f"Policy: {policy_version}\nLabels:\n{labels}\n\n"
        f"Title: {video.title.strip() or '(none)'}\n"
        f"Description: {video.description.strip() or '(none)'}\n"
        f"Transcript: {transcript or '(no speech)'}\n\n"
        "Answer:\n"
    )


def cot_render(stages: Iterable[Mapping[str, Any]], label: str) -> str:
    """A chain-of-thought as labelled stages, one line each, in the canonical stage order.

    Stages missing from ``stages`` are left out; the final-judgment line always states ``label``
    (followed by the stage's reasoning, when there is any).
    """
    by_key = {s.get("key"): s for s in stages}
    lines = []
    for key, title in STAGES:
        text = " ".join(str(by_key.get(key, {}).get("text", "")).split())
        if key == "final_judgment":
            lines.append(f"{title}: {label}" + (f". {text}" if text else ""))
        elif key in by_key:
            lines.append(f"{title}: {text}")
    return "\n".join(lines)
