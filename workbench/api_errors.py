"""The API's answer to a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE: JSON with the limit (413), not the HTML
"Bad Request (400)" page, which said nothing, that Django makes of the SuspiciousOperation. And to an expired
or switched-off credential: 401 with ``WWW-Authenticate`` (DRF answers 403 when a view's first authentication is the session's)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import status
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
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": fields_too_big_message()}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, CredentialRefused):
        body = {"detail": str(exc.detail), "code": exc.code}
        headers = {"WWW-Authenticate": f'{exc.scheme} error="invalid_token"'}
        return Response(body, status=status.HTTP_401_UNAUTHORIZED, headers=headers)
    return exception_handler(exc, context)
