"""``{% load repro_pairs %}{% video_repro_pairs_panel video %}``: the strongest reproduction pairs a video is in, on
its page, each linking to the pair screen, and a link to all of them (the video's pairs screen) when there are more;
``{% video_reupload_line video %}``: the review screen's line saying its item is a likely re-upload of an earlier
video, or that later videos are likely re-uploads of it. The reproduction wing owns the rule (media and review,
lower wings, cannot import it)."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.media.models import Video
from moderation.reproduction.selectors import PAIR_QUEUE_THRESHOLD, video_pairs_strongest, video_reupload_pairs
from workbench.roles import Perm

register = template.Library()


@register.inclusion_tag("moderation/reproduction/_video_pairs.html", takes_context=True)
def video_repro_pairs_panel(context: dict[str, Any], video: Video) -> dict[str, Any]:
    user = context["request"].user
    if not user.has_perm(Perm.REVIEW_VIDEO):  # the pair screens are the reviewers': an uploader gets no dead links
        return {"shown": False}
    strongest = video_pairs_strongest(video=video, user=user)
    return {"shown": True, "video": video, "pairs": strongest.pairs, "total": strongest.total,
            "more": strongest.more, "threshold": PAIR_QUEUE_THRESHOLD}  # fmt: skip


@register.inclusion_tag("moderation/reproduction/_reupload_line.html", takes_context=True)
def video_reupload_line(context: dict[str, Any], video: Video) -> dict[str, Any]:
    """The pairs that make ``video`` a likely re-upload of an earlier video, and those that make later videos
    likely re-uploads of it, that the user may open, each linking to the pair screen (one query; none for a user
    who may not open pair screens)."""
    user = context["request"].user
    if not user.has_perm(Perm.REVIEW_VIDEO):
        return {"pairs": None}
    return {"pairs": video_reupload_pairs(video=video, user=user), "video": video}
