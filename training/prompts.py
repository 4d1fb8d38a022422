"""The CoT as text, used to build preference pairs and SFT targets.

It comes from moderation's inference wing (its CoT renderer), as the prompt does (``data.py`` calls
``policy_prompt``), so a trained adapter sees in training exactly the prompt it is served and learns
to answer in the format the inference parser reads (the policy version's output format).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from moderation.inference.cot import render_stages
from moderation.models import PolicyVersion


def cot_render(stages: Iterable[Mapping[str, Any]], label: str, policy_version: PolicyVersion) -> str:
    """A chain-of-thought as the model would write it: labelled stages ending in the final judgment."""
    return render_stages([dict(s) for s in stages], label, fmt=policy_version.output_format)
