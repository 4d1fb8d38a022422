"""Request checks that apply to every view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

NUL_MESSAGE = "Text may not contain NUL characters (\\x00); remove them and try again."


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    for params in (request.GET, request.POST):
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return True
    return False


class RejectNulMiddleware:
    """Answer 400 with a clear message to a URL path, form or query string carrying a NUL character.

    PostgreSQL's text type cannot hold NUL, so such input would otherwise fail deep inside a save
    as a database error, or as a ValueError where a path is opened (a 500). Uploaded files are not text and are left alone; JSON bodies go
    through the API's parser (workbench/parsers.py), which stores NUL as U+FFFD like every importer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
