"""The feedback ingest endpoint, authenticated by a per-integration token.

``Authorization: Integration <token>``. The token authenticates this endpoint only: it is not a
user, so every other API (session or ``Token`` auth, ``IsAuthenticated``) refuses it, and this
endpoint refuses users' sessions and tokens.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from moderation.errors import ModerationError
from moderation.feedback.models import Integration
from moderation.feedback.services import MAX_BATCH, feedback_events_ingest, integration_for_token

KEYWORD = "Integration"


class IntegrationAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Integration] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Integration header: expected 'Integration <token>'.")
        try:
            token = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid integration token.") from exc
        integration = integration_for_token(token=token)
        if integration is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked integration token.")
        return AnonymousUser(), integration

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class IntegrationAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the integration token in the OpenAPI schema (and lets Swagger UI send it)."""

    target_class = IntegrationAuthentication
    name = "integrationToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"Per-integration token: `{KEYWORD} <token>` (manage.py create_integration NAME).",
        }


class IsIntegration(BasePermission):
    message = "This endpoint takes an integration token (Authorization: Integration <token>)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Integration)


class FeedbackEventSerializer(serializers.Serializer):
    """One event (documentation only: rows are validated one by one so a bad row never fails the batch)."""

    event_id = serializers.CharField(max_length=200)
    type = serializers.ChoiceField(choices=["report", "dislike", "like", "appeal", "share", "watch_time"])
    video_external_id = serializers.CharField(required=False)
    video_id = serializers.IntegerField(required=False, min_value=1)
    timestamp = serializers.CharField(help_text="ISO 8601 with timezone, or epoch seconds")
    reason = serializers.CharField(required=False, max_length=500, help_text="report")
    seconds = serializers.FloatField(required=False, help_text="watch_time")
    appeal_id = serializers.CharField(required=False, help_text="appeal; defaults to event_id")
    outcome = serializers.ChoiceField(choices=["pending", "upheld", "overturned"], required=False)


# Built with inline_serializer because a declared ``errors`` field would shadow ``Serializer.errors``
# for the type checker (at runtime DRF's metaclass moves declared fields off the class).
IngestResultSerializer = inline_serializer(
    name="IngestResult",
    fields={
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class FeedbackEventsView(APIView):
    authentication_classes = [IntegrationAuthentication]
    permission_classes = [IsIntegration]

    @extend_schema(
        request=FeedbackEventSerializer(many=True),
        responses={200: IngestResultSerializer, 400: OpenApiResponse(description="not a list, or too many events")},
        description=f"Ingest up to {MAX_BATCH} platform events; idempotent by (integration, event_id).",
    )
    def post(self, request: Request) -> Response:
        events = request.data
        if isinstance(events, dict) and "events" in events:
            events = events["events"]
        try:
            # IsIntegration has already checked that request.auth is an Integration.
            result = feedback_events_ingest(integration=cast(Integration, request.auth), events=events)
        except ModerationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(result.as_dict())
