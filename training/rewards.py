"""BLM-Guard's GRPO reward: rule correctness + structure + an optional critique from a guide model.

* correctness: 1.0 when scene AND violation type are right, 0.5 when only the scene is, else 0.
  BLM-format policies read both from ``<answer>``; KuaiMod-format policies use the label and its
  major category the same way (the major category plays the scene).
* structure: 1.0 when the output has the policy format's structure (``<think>`` with its three
  stages and an ``<answer>``; KuaiMod's five stage headers) and parses, else 0. The label's
  validity is correctness's business, not structure's.
* critique (weight 0 by default, then never called): a guide model reads the candidate's reasoning
  as an item under the same policy rubric (its labels and criteria) through the inference backend
  interface; the score is the guide's confidence when it reaches the human label, else 0. A proxy
  for a rubric critic that needs no extra prompt machinery; swap the ``Critic`` for a real judge.

Reward functions follow TRL's GRPOTrainer contract: ``f(prompts, completions, completion_ids,
**columns) -> list[float]``; the dataset's ``label`` column (the human label) arrives as ``label``.
No heavy imports here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from moderation.inference.backends import ContentBundle
from moderation.inference.cot import CotParseError, parse
from moderation.inference.metrics import tag_to_major
from moderation.policies.spec import PolicySpec


class _AnyLabel(frozenset[str]):
    """A label set that admits every label: parse the structure, leave the label to correctness."""

    def __contains__(self, item: object) -> bool:
        return True


def completion_text(completion: Any) -> str:
    """TRL passes strings for plain prompts and message lists for conversational ones."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        content = last.get("content", "") if isinstance(last, dict) else last
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


def structure_score(text: str, policy: PolicySpec) -> float:
    try:
        parse(text, policy.output_format, _AnyLabel(), None)
    except CotParseError:
        return 0.0
    return 1.0


def correctness_score(text: str, true_label: str, policy: PolicySpec) -> float:
    majors = tag_to_major(policy.taxonomy)
    try:
        parsed = parse(text, policy.output_format, policy.labels(), None)
    except CotParseError:
        return 0.0
    true_scene = majors.get(true_label, "")
    pred_scene = parsed.scene if policy.output_format == "blm" else majors.get(parsed.label, "")
    if parsed.label == true_label and (not true_scene or pred_scene == true_scene):
        return 1.0
    if true_scene and pred_scene == true_scene:
        return 0.5
    return 0.0


class BackendCritic:
    """The guide model, called through ``moderation.inference.backends.get_backend(...).decide_batch``."""

    def __init__(self, backend: str, *, base_model: str = "", adapter_path: str = "", policy: PolicySpec) -> None:
        self.backend_name = backend
        self.base_model = base_model
        self.adapter_path = adapter_path
        self.policy = policy
        self.calls = 0

    def __call__(self, texts: Sequence[str], labels: Sequence[str]) -> list[float]:
        from moderation.inference.backends import get_backend

        backend = get_backend(self.backend_name, base_model=self.base_model, adapter_path=self.adapter_path)
        bundles = [
            ContentBundle(
                title="Candidate moderation reasoning to check against the policy",
                description=text,
                uploader="",
                segments=[],
                frames=[],
            )
            for text in texts
        ]
        self.calls += 1
        results = backend.decide_batch(bundles, self.policy)
        return [
            r.confidence if r.label == label and not r.parse_error else 0.0
            for r, label in zip(results, labels, strict=True)
        ]


def reward_functions(
    policy: PolicySpec,
    *,
    weights: dict[str, float],
    critic: Callable[[Sequence[str], Sequence[str]], list[float]] | None = None,
) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """The reward functions and their weights for GRPOConfig.reward_weights; weight-0 parts are left out."""

    def correctness_reward(prompts: Any = None, completions: Any = None, label: Any = None, **_: Any) -> list[float]:
        return [correctness_score(completion_text(c), t, policy) for c, t in zip(completions, label, strict=True)]

    def structure_reward(prompts: Any = None, completions: Any = None, **_: Any) -> list[float]:
        return [structure_score(completion_text(c), policy) for c in completions]

    def critique_reward(prompts: Any = None, completions: Any = None, label: Any = None, **_: Any) -> list[float]:
        assert critic is not None
        return critic([completion_text(c) for c in completions], list(label))

    funcs: list[Callable[..., list[float]]] = []
    out_weights: list[float] = []
    for func, weight in (
        (correctness_reward, weights.get("correctness", 1.0)),
        (structure_reward, weights.get("structure", 1.0)),
        (critique_reward, weights.get("critique", 0.0)),
    ):
        if weight > 0 and (func is not critique_reward or critic is not None):
            funcs.append(func)
            out_weights.append(float(weight))
    return funcs, out_weights
