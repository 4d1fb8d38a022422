"""``{% load tags_panel %}{% video_tags_panel video %}``: the tags panel (``moderation/tagging/_panel.html``) drawn in
the review screen itself. It was an empty box the page filled with a second request once loaded (hx-trigger="load"):
a placeholder on every item for as long as that request took, then the column under it jumped. Its reads are a few
indexed queries of one video's rows, cheap enough to make with the page (and with the item claimed ahead, which the
screen preloads). The tagging wing owns the panel; review, a lower wing, cannot import it, so the template asks."""

from __future__ import annotations

from typing import Any

from django import template

from moderation.media.models import Video
from moderation.tagging.selectors import tag_panel_for
from moderation.tagging.services import tag_set_default

register = template.Library()


@register.inclusion_tag("moderation/tagging/_panel.html")
def video_tags_panel(video: Video) -> dict[str, Any]:
    """The panel as the review screen's htmx request drew it (``moderation.tagging.views.tag_panel``): the default
    tag set's ranked chips and the video's tags. The screen shows only videos open to its reviewer."""
    return {"video": video, "panel": tag_panel_for(video_id=video.pk, tag_set=tag_set_default())}
