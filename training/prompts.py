"""Text renderings used to build preference pairs: the prompt a model sees and a CoT as text.

Both come from moderation's inference wing (its prompt builder and its CoT renderer), so a
trained adapter sees in training exactly the prompt it is served and learns to answer in the
format the inference parser reads (the policy version's output format).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from moderation.inference.cot import render_stages
from moderation.inference.prompts import policy_prompt
from moderation.inference.services import content_bundle_for
from moderation.models import Decision, PolicyVersion


def decision_prompt(decision: Decision) -> str:
    """The text prompt for the video a decision was made about, under the decision's policy version."""
    return policy_prompt(content_bundle_for(decision.video), decision.policy_version.spec()).as_text() + "\n"


def cot_render(stages: Iterable[Mapping[str, Any]], label: str, policy_version: PolicyVersion) -> str:
    """A chain-of-thought as the model would write it: labelled stages ending in the final judgment."""
    return render_stages([dict(s) for s in stages], label, fmt=policy_version.output_format)
