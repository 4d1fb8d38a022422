"""``{% load feedback %}{% feedback_panel video_id %}``: a video's user-feedback statistics, so any
screen can show them without its view having to fetch them."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.feedback.selectors import feedback_stats_for

register = template.Library()


@register.inclusion_tag("moderation/feedback/_panel.html")
def feedback_panel(video_id: int) -> dict[str, Any]:
    return {"feedback": feedback_stats_for(video_id=video_id)}
