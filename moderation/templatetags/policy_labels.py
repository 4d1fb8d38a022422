"""``{% load policy_labels %}{{ decision.label|label_name:decision.policy_version }}``: a label key's English name
under the policy version it was given under ("Steering users to private deals" for 引导私下交易), for lists that
showed the bare key, which a labeler who reads no Chinese could not scan."""

from __future__ import annotations

from django import template

from moderation.policies.models import PolicyVersion

register = template.Library()


@register.filter
def label_name(label: str | None, version: PolicyVersion | None) -> str:
    """The name ``version``'s taxonomy gives ``label``; empty for no label, no version, or a key it does not name
    (an unparsed answer, a label from another version), so the key alone is shown as before."""
    if not label or version is None:
        return ""
    name = version.label_names().get(label, "")
    return "" if name == label else name
