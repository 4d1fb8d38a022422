"""One button's action on one video (Retry, Dismiss: the video page's, the ops page's), answered alike on every screen.

The service runs with who asked; what it did, or why it refused (a ``ModerationError``: a double click, nothing left
to do, the row gone meanwhile), is a message, never an error page: in the panel the button sits in when htmx asked
(``panel``), else on the page the button goes back to (``back``). Each view stays a few lines: its permission, the
service, and the words for what was done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from moderation.errors import ModerationError

# A message level ("success" or "error") and its text.
Outcome = tuple[str, str]


def video_action(
    request: HttpRequest,
    video_id: int,
    *,
    action: Callable[..., Any],
    done: Callable[[Any], str],
    back: str,
    panel: Callable[[Outcome], HttpResponse] | None = None,
) -> HttpResponse:
    """Run ``action(video_id=, by=)`` for the signed-in user and say what came of it (``done`` of its result, or the
    refusal). A row the action looks up by primary key that no longer exists is a 404, as opening it would be."""
    user = cast(User, request.user)  # the views' permission decorators let only a signed-in user through
    try:
        outcome: Outcome = ("success", done(action(video_id=video_id, by=user)))
    except ModerationError as exc:
        outcome = ("error", str(exc))
    except ObjectDoesNotExist as exc:
        raise Http404("No such video.") from exc
    if panel is not None and request.htmx:  # type: ignore[attr-defined]
        return panel(outcome)
    getattr(messages, outcome[0])(request, outcome[1])
    return redirect(back)
