"""Severities have one source (moderation.policies.taxonomy) and one rule per label (PolicySpec.severities_for)."""

from __future__ import annotations

from moderation.inference import cot
from moderation.inference.backends import blm_rubric
from moderation.policies.spec import PolicySpec
from moderation.policies.taxonomy import ALL_SEVERITIES, NO_SEVERITY, SEVERITIES
from moderation.review.models import Review

TAXONOMY = [
    {"key": "fraud", "name": "Fraud", "tags": [
        {"key": "scam", "name": "Scam", "severities": ["high", "low"]},
        {"key": "spam", "name": "Spam"},
    ]},
]  # fmt: skip


def test_every_copy_reads_the_one_list() -> None:
    assert (NO_SEVERITY, *SEVERITIES) == ALL_SEVERITIES
    assert tuple(Review.Severity.values) == ALL_SEVERITIES  # the review form's choices
    assert cot.BLM_SEVERITIES == ALL_SEVERITIES  # the BLM-Guard parser


def test_severities_for_a_label() -> None:
    spec = PolicySpec(taxonomy=TAXONOMY, safe_label="ok", output_format="blm")
    assert spec.severities_for("ok") == (NO_SEVERITY,)
    assert spec.severities_for("scam") == ("low", "high")  # the tag's own, in the canonical order
    assert spec.severities_for("spam") == SEVERITIES  # a tag that names none allows all
    # the parser's rubric is built from the same rule
    assert blm_rubric(spec).types == {
        "scam": ("fraud", frozenset({"low", "high"})),
        "spam": ("fraud", frozenset(SEVERITIES)),
    }
