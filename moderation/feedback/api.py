"""The feedback ingest endpoint, authenticated by a per-integration token.

``Authorization: Integration <token>`` (see ``moderation.integrations.api``). This endpoint refuses
users' sessions and tokens.
"""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from moderation.errors import ModerationError
from moderation.feedback.services import MAX_BATCH, feedback_events_ingest
from moderation.integrations.api import IntegrationOnlyView, IntegrationRateThrottle
from moderation.integrations.models import Integration


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


class FeedbackEventsView(IntegrationOnlyView):
    throttle_classes = [IntegrationRateThrottle]

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
