"""The API's answer to a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE: JSON with the limit (413), not the HTML
"Bad Request (400)" page, which said nothing, that Django makes of the SuspiciousOperation. And to an expired
or switched-off credential: 401 with ``WWW-Authenticate`` (DRF answers 403 when a view's first authentication is the session's).

Every error it answers is JSON (``application/json``), the ``Error`` body the OpenAPI schema declares, whatever
renderer the request negotiated: /api/schema/ negotiates YAML by default, and its 401/403/404/405/406 came back as
YAML labelled ``application/vnd.oai.openapi`` (with ``detail`` a mapping of ``string`` and ``code``), which no
client built from the schema could read. Pages for a person keep their HTML: the browsable API and /api/docs/
(its "Sign in first" page)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from workbench.tokens import CredentialRefused


def fields_too_big_message() -> str:
    limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) // (1024 * 1024)
    return (
        f"The request's fields are larger than {limit} MB; send fewer per request "
        "(a JSON body counts whole; a video's multipart file does not count)."
    )


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = _error_response(exc, context)
    if response is not None and isinstance(context.get("request"), Request):
        _answer_in_json(context["request"])
    return response


def _error_response(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": fields_too_big_message()}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, CredentialRefused):
        body = {"detail": str(exc.detail), "code": exc.code}
        headers = {"WWW-Authenticate": f'{exc.scheme} error="invalid_token"'}
        return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers=headers)
    return exception_handler(exc, context)


def _answer_in_json(request: Request) -> None:
    """Render the error with JSON unless the request negotiated plain JSON already (keeping ``; indent=``) or
    an HTML page for a person (the browsable API, whose format is ``api``, and /api/docs/). DRF's
    ``finalize_response`` renders the response with the request's renderer, so that is the one to set; a request
    whose Accept no renderer satisfied (406, or a ``?format=`` the view lacks: 404) has none yet and gets JSON
    too, not the view's first renderer."""
    renderer = getattr(request, "accepted_renderer", None)
    if renderer is not None and (type(renderer) is JSONRenderer or renderer.media_type == "text/html"):
        return
    request.accepted_renderer = JSONRenderer()
    request.accepted_media_type = JSONRenderer.media_type
