"""The one place that documents the API's error responses in the OpenAPI schema.

Every operation answered 400, 401, 403, 404 and 429 with a JSON body (DRF's exception handler and
``workbench.api_errors``) that the schema did not mention, so a client generated from it knew only the
success bodies. ``WorkbenchAutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds each error an operation can really
answer, decided from the view itself, with one of two body components:

* ``Error``: ``{"detail": "...", "code": "..."}`` (``code`` only on a refused credential's 401): 401, 403,
  404, 413, 415, 429, and any other 4xx a view declares without a body (422 of a reused Idempotency-Key).

403 is declared only where something can answer it: a permission that refuses a caller some authenticator
accepted (``_admits_every_caller_of`` decides that from the permission and its ``|``/``&`` parts), an anonymous
caller refused where the first authenticator names no scheme (DRF's 403 behind the session), or the session's
CSRF check on a write. An endpoint that takes only a platform's token (feedback events) answers a missing or
wrong token with 401 and lets every accepted token through: no 403.

415 is declared on every operation that takes a body: DRF refuses a Content-Type none of the view's parsers
reads; its description names the ones they do.

405 is not declared: OpenAPI describes operations, one per path and method, and a method the path does not
take is no operation to hang a response on (every declared operation's own method is never a 405). Such a
request is still answered with the ``Error`` body (DRF's ``MethodNotAllowed``, after authentication and
permissions, with ``Allow``); ``tests/workbench/test_api_error_schema.py`` sends each undeclared method to
each path and checks it.

413 is declared on every operation that takes a body (``workbench.middleware`` refuses one declared larger than
the upload limit plus the form limit, and form fields over DATA_UPLOAD_MAX_MEMORY_SIZE; the API's exception
handler a JSON body over it); an operation that takes an upload (a serializer with a file field: video submit)
names the upload limit in its description.
* ``ValidationError``: each refused field or query parameter with its message or messages
  (``non_field_errors`` for the request as a whole, ``detail`` alone for a body that could not be read or a
  request refused as a whole): 400.

A view that declares one of these statuses itself keeps its description (what *this* operation refuses);
the body comes from here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance
from drf_spectacular.utils import OpenApiRequest
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AND, OR, AllowAny, IsAuthenticated

ERROR_COMPONENT = "Error"
VALIDATION_ERROR_COMPONENT = "ValidationError"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Why the request was refused, in words a person can read.",
    "properties": {
        "detail": {"type": "string", "description": "the reason"},
        "code": {
            "type": "string",
            "description": "a refused credential's reason, for programs (401 only): invalid_token, token_expired, "
            "integration_switched_off, …",
        },
    },
    "required": ["detail"],
}

_MESSAGES: dict[str, Any] = {
    "anyOf": [
        {"type": "string"},
        # A list field's or nested serializer's errors: messages, or an object per refused item.
        {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
        {"type": "object"},
    ]
}
VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Each refused field or query parameter, with its message or messages; `non_field_errors` for "
    "the request as a whole; `detail` alone when the body could not be read (malformed JSON) or the request "
    "was refused as a whole.",
    "properties": {
        "detail": {"type": "string"},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": _MESSAGES,
    "minProperties": 1,
}

# Query parameters whose bad value is a 404 (a page, cursor or schema format that does not exist), not a 400.
_NOT_VALIDATED_QUERY = {"page", "cursor", "format", "lang"}

DESCRIPTIONS = {
    "400": "The request was refused as sent: what is wrong with each field or query parameter.",
    "401": "No valid credential: none was sent, or the token is unknown, expired or switched off (`code` says "
    "which; the WWW-Authenticate header names the scheme to use).",
    "403": "Your role or credential may not do this (a read-scoped API token may only send GET, HEAD and OPTIONS), "
    "or a signed-in session's write lacks its CSRF token.",
    "404": "Nothing here that you may see: no such object or one hidden from you; on a list, a page or cursor "
    "that does not exist.",
    "429": "Too many requests: try again after Retry-After seconds.",
}
# What each status's body looks like, as the API words it (the docs show them beside the schema).
EXAMPLES: dict[str, dict[str, str]] = {
    "400": {"since": "'since' must be ISO 8601, e.g. 2026-05-01T12:00:00Z."},
    "401": {"detail": "Invalid integration token.", "code": "invalid_token"},
    "403": {"detail": "You do not have permission to perform this action."},
    "404": {"detail": "Not found."},
    "413": {
        "detail": "The request's fields are larger than 10 MB; send fewer per request "
        "(a JSON body counts whole; a video's multipart file does not count)."
    },
    "415": {"detail": 'Unsupported media type "text/plain" in request.'},
    "429": {"detail": "Request was throttled. Expected available in 42 seconds."},
}
_MB = 1024 * 1024
_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'the credential scheme to use, with the reason (`error="invalid_token"`)',
        }
    },
    "429": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds until a request is accepted"}},
}


class WorkbenchAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the errors each operation answers (see the module docstring)."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_statuses():
            responses.setdefault(code, {"description": self._description(code)})
        for code, response in responses.items():
            if code.startswith("4") and "content" not in response:
                response.update(self._error_response(code, description=response.get("description", "")))
        return dict(sorted(responses.items()))

    def _error_statuses(self) -> list[str]:
        """The error statuses this operation can answer, from its view's authentication, permission,
        throttle and pagination classes and its parameters."""
        view: Any = self.view
        codes = []
        query = {p["name"] for p in self._get_parameters() if p.get("in") == "query"}
        if self.method in ("POST", "PUT", "PATCH") or query - _NOT_VALIDATED_QUERY:
            codes.append("400")
        # A token (user's or integration's) can be refused; a session cannot (it is just absent).
        if any(not issubclass(cls, SessionAuthentication) for cls in getattr(view, "authentication_classes", [])):
            codes.append("401")
        if self._may_answer_403():
            codes.append("403")
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.extend(["413", "415"])
        if view.get_throttles():
            codes.append("429")
        return codes

    def _may_answer_403(self) -> bool:
        """Whether a caller of this operation can be answered 403 (see the module docstring)."""
        view: Any = self.view
        permissions = [p for p in view.get_permissions() if not isinstance(p, AllowAny)]
        if not permissions:
            return False
        authentication_classes = list(getattr(view, "authentication_classes", []))
        if not authentication_classes:
            return True
        # DRF answers an anonymous caller 401 only when the first authenticator names a scheme
        # (``APIView.get_authenticate_header``); otherwise 403.
        if not authentication_classes[0]().authenticate_header(getattr(view, "request", None)):
            return True
        if self.method in ("POST", "PUT", "PATCH", "DELETE") and any(
            issubclass(cls, SessionAuthentication) for cls in authentication_classes
        ):
            return True  # the session's CSRF check
        return not all(
            _admits_every_caller_of(permission, cls) for permission in permissions for cls in authentication_classes
        )

    def _accepts_upload(self) -> bool:
        """Whether this operation's request body takes a file (a serializer with a file field, for any of its
        media types): video submit."""
        if self.method not in ("POST", "PUT", "PATCH"):
            return False
        declared = self.get_request_serializer()
        for serializer in declared.values() if isinstance(declared, dict) else [declared]:
            if isinstance(serializer, OpenApiRequest):
                serializer = serializer.request
            body: Any = force_instance(serializer)
            if isinstance(body, serializers.ListSerializer):  # a list body (feedback events): its items
                body = body.child
            fields: Any = body.fields if isinstance(body, serializers.Serializer) else {}
            if any(isinstance(field, serializers.FileField) for field in fields.values()):
                return True
        return False

    def _description(self, code: str) -> str:
        if code == "429":
            return self._throttled_description()
        if code == "413":
            return self._too_large_description()
        if code == "415":
            return self._unsupported_media_description()
        return DESCRIPTIONS[code]

    def _too_large_description(self) -> str:
        """413's description, with the limits in force: an upload's, and the form fields' (or JSON body's)."""
        fields = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) // _MB
        if self._accepts_upload():
            upload = int(settings.WORKBENCH_UPLOAD_MAX_BYTES) // _MB
            return (
                f"The request is larger than the server takes: a video of up to {upload} MB with its form, whose "
                f"other fields may hold up to {fields} MB. Refused before the body is read when its Content-Length "
                "says so."
            )
        return f"The request's body (its fields, or its JSON) is larger than {fields} MB."

    def _throttled_description(self) -> str:
        """429's description, naming each rate this operation counts (each throttle says, in ``describes``, whose
        rate it is: an integration's, the user's API requests, the user's uploads)."""
        view: Any = self.view
        rates = [getattr(throttle, "describes", "") for throttle in view.get_throttles()]
        said = "; or ".join(rate for rate in rates if rate)
        return f"Too many requests, {said}: try again after Retry-After seconds." if said else DESCRIPTIONS["429"]

    def _unsupported_media_description(self) -> str:
        """415's description, with the media types this operation's parsers read."""
        return f"The body's Content-Type is not one this operation reads; send one of {', '.join(self.map_parsers())}."

    def _error_response(self, code: str, *, description: str) -> dict[str, Any]:
        name, schema = (
            (VALIDATION_ERROR_COMPONENT, VALIDATION_ERROR_SCHEMA) if code == "400" else (ERROR_COMPONENT, ERROR_SCHEMA)
        )
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name)
        self.registry.register_on_missing(component)
        media: dict[str, Any] = {"schema": component.ref}
        if code in EXAMPLES:
            media["example"] = EXAMPLES[code]
        response: dict[str, Any] = {
            "description": description or DESCRIPTIONS.get(code, ""),
            "content": {"application/json": media},
        }
        if code in _HEADERS:
            response["headers"] = _HEADERS[code]
        return response


def _admits_every_caller_of(permission: Any, authentication: type) -> bool:
    """Whether ``permission`` lets through every caller that ``authentication`` accepts, so it can never answer
    them 403. Only what is known: ``AllowAny``; ``IsAuthenticated`` behind an authenticator of users (one whose
    accepted caller is no user says ``authenticates_a_user = False``); a permission of ours that says so
    (``admits_every_caller_of(authentication)``); ``|`` and ``&`` of these. Anything else may refuse."""
    if isinstance(permission, AllowAny):
        return True
    if isinstance(permission, OR | AND):
        operands: Any = permission  # DRF's stubs omit op1 and op2
        parts = (operands.op1, operands.op2)
        admitted = [_admits_every_caller_of(part, authentication) for part in parts]
        return any(admitted) if isinstance(permission, OR) else all(admitted)
    if type(permission) is IsAuthenticated:
        return bool(getattr(authentication, "authenticates_a_user", True))
    admits = getattr(permission, "admits_every_caller_of", None)
    return bool(admits(authentication)) if callable(admits) else False
