"""The media shield: every screen that shows a video's pictures blurs and greys them until the viewer chooses
"Reveal media"; the choice is remembered for the session (set by ``moderation.review.views.reveal``). Kept in the
media wing, the lowest that shows media, so the video page reads it as the review, tag, pair and labeling screens do."""

from __future__ import annotations

from django.http import HttpRequest

REVEAL_SESSION_KEY = "media_revealed"


def media_revealed(request: HttpRequest) -> bool:
    """Whether this user chose to see media unshielded (blurred and greyscale is the default)."""
    return bool(request.session.get(REVEAL_SESSION_KEY, False))
