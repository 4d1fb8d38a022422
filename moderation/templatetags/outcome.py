"""``{% load outcome %}{% video_outcome_panel video %}``: a video's model decision and review state on its
page; the review wing owns the rule (media, the bottom wing, cannot import it)."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.media.models import Video
from moderation.review.selectors import video_outcome_for
from workbench.roles import Perm

register = template.Library()


@register.inclusion_tag("moderation/review/_video_outcome.html", takes_context=True)
def video_outcome_panel(context: dict[str, Any], video: Video, title: str = "Outcome") -> dict[str, Any]:
    """``title``: the panel's heading where the page has an "Outcome" of its own (an adjudication's decision)."""
    # The video itself too: a failed one says where processing stopped instead of "No model decision yet".
    user = context["request"].user
    return {
        "outcome": video_outcome_for(video=video, user=user),
        "title": title,
        "video": video,
        # Labelers (and admins) are offered the correction an accepted one relabelling the video links to.
        "may_correct": user.has_perm(Perm.CORRECT_COT),
    }
