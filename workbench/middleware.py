"""Request checks that apply to every view."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

NUL_MESSAGE = "Text may not contain NUL characters (\\x00); remove them and try again."


def _has_nul(request: HttpRequest) -> bool:
    for params in (request.GET, request.POST):
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return True
    if request.content_type == "application/json":
        # A JSON string may spell NUL as an escape; PostgreSQL text cannot store it either way.
        try:
            body = request.body
        except RequestDataTooBig:  # over DATA_UPLOAD_MAX_MEMORY_SIZE: the view reads it as a stream
            return False
        return b"\x00" in body or b"\\u0000" in body.lower()
    return False


class RejectNulMiddleware:
    """Answer 400 with a clear message to any request whose text carries a NUL character.

    PostgreSQL's text type cannot hold NUL, so such input would otherwise fail deep inside a save
    as a database error (a 500). Forms and JSON bodies are checked; uploaded files are not text and
    are left alone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_MESSAGE}, status=400)
            return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
