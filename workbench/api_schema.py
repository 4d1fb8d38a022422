"""The one place that documents the API's error responses in the OpenAPI schema.

Every operation answered 400, 401, 403, 404 and 429 with a JSON body (DRF's exception handler and
``workbench.api_errors``) that the schema did not mention, so a client generated from it knew only the
success bodies. ``WorkbenchAutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds each error an operation can really
answer, decided from the view itself, with one of two body components:

* ``Error``: ``{"detail": "...", "code": "..."}`` (``code`` only on a refused credential's 401): 401, 403,
  404, 429, and any other 4xx a view declares without a body (422 of a reused Idempotency-Key).
* ``ValidationError``: each refused field or query parameter with its message or messages
  (``non_field_errors`` for the request as a whole, ``detail`` alone for a body that could not be read or a
  request refused as a whole): 400.

A view that declares one of these statuses itself keeps its description (what *this* operation refuses);
the body comes from here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

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
    "401": "No valid credential: the token is unknown, expired or switched off (`code` says which; the "
    "WWW-Authenticate header names the scheme), or the endpoint takes only a token and none was sent.",
    "403": "Your role or credential may not do this (an anonymous caller of an endpoint that takes a session "
    "gets this too).",
    "404": "Nothing here that you may see: no such object or one hidden from you; on a list, a page or cursor "
    "that does not exist.",
    "429": "Over the integration's rate limit: try again after Retry-After seconds.",
}
# What each status's body looks like, as the API words it (the docs show them beside the schema).
EXAMPLES: dict[str, dict[str, str]] = {
    "400": {"since": "'since' must be ISO 8601, e.g. 2026-05-01T12:00:00Z."},
    "401": {"detail": "Invalid integration token.", "code": "invalid_token"},
    "403": {"detail": "You do not have permission to perform this action."},
    "404": {"detail": "Not found."},
    "429": {"detail": "Request was throttled. Expected available in 42 seconds."},
}
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
            responses.setdefault(code, {"description": DESCRIPTIONS[code]})
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
        if any(not isinstance(permission, AllowAny) for permission in view.get_permissions()):
            codes.append("403")
        if "{" in self.path or (self._is_list_view() and self._get_paginator() is not None):
            codes.append("404")
        if view.get_throttles():
            codes.append("429")
        return codes

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
