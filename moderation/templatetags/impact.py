"""``{% load impact %}{% impact_kept version user active as kept %}``: a draft's kept impact preview (never a new run),
for the publish step to draw in the page, so the policies wing need not read inference's runs. ``active``: the active
version the page read already (not read again)."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.inference.impact import ImpactPreview, policy_impact_preview_kept
from moderation.policies.selectors import DEFAULT_IMPACT_SAMPLE

register = template.Library()


@register.simple_tag
def impact_kept(version: Any, user: Any, active: Any = None) -> ImpactPreview | None:
    return policy_impact_preview_kept(draft=version, user=user, sample_size=DEFAULT_IMPACT_SAMPLE, active=active)
