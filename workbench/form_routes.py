"""Form addresses: routes that only take a form's POST, and what a GET on one of them answers.

A refused form is shown again at the address it was posted to (``/tags/vocabulary/20/``), so that address is what the
address bar shows, what a bookmark keeps and what a reload after Enter opens. It has no page of its own; a GET there
was a 405 ("Nothing to open here"). :func:`post_only` replaces ``require_POST``: a GET or HEAD is sent (303) to the
screen the form belongs to — the nearest address above it that is a page (``/tags/vocabulary/``,
``/videos/7/retry/`` → ``/videos/7/``), found in the URLconf, not by a list kept by hand. Nothing is saved, and the
query string (a form's own fields, sometimes) is dropped. Other methods still get 405 with ``Allow: POST``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import Resolver404, get_script_prefix, resolve, reverse

View = TypeVar("View", bound=Callable[..., HttpResponseBase])
# Marks a view wrapped by ``post_only`` so that a form address is never taken for its own screen.
POST_ONLY_MARK = "workbench_post_only"


def is_post_only(view: Any) -> bool:
    return bool(getattr(view, POST_ONLY_MARK, False))


def form_screen(path: str, urlconf: Any = None) -> str:
    """The screen a form address belongs to: the nearest address above ``path`` that resolves to a view other than
    a form address (a page), else home. ``/training/models/3/promote/`` → ``/training/models/`` (no page is at
    ``/training/models/3/``)."""
    parts = [p for p in path.split("/") if p]
    while parts:
        parts.pop()
        candidate = "/" + "".join(f"{p}/" for p in parts)
        try:
            match = resolve(candidate, urlconf)
        except Resolver404:
            continue
        if not is_post_only(match.func) and not candidate.startswith("/api/"):
            return candidate
    return "/"


def post_only(view: View) -> View:
    """``require_POST`` for a form's address, where a GET or HEAD goes to the form's screen (:func:`form_screen`)."""
    return _post_only(view, screen=None)


def post_only_to(screen: str) -> Callable[[View], View]:
    """:func:`post_only` for a form whose screen is not the address above it: ``screen`` is the screen's route name
    (no URL arguments), e.g. the tag sets' form at ``/tags/sets/save/`` is on the vocabulary screen, not ``/tags/``."""

    def decorator(view: View) -> View:
        return _post_only(view, screen=screen)

    return decorator


def _post_only(view: View, *, screen: str | None) -> View:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method in ("GET", "HEAD"):
            if screen is not None:
                return HttpResponseRedirect(reverse(screen), status=303)
            found = form_screen(request.path_info, getattr(request, "urlconf", None))
            return HttpResponseRedirect(get_script_prefix().rstrip("/") + found, status=303)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return view(request, *args, **kwargs)

    setattr(wrapped, POST_ONLY_MARK, True)
    return cast(View, wrapped)
