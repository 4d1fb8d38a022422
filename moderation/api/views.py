from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from moderation.api.permissions import CanReadContent, CanUploadOrReadOnly
from moderation.api.serializers import (
    DecisionSerializer,
    VideoDetailSerializer,
    VideoSerializer,
    VideoUploadSerializer,
)
from moderation.errors import ModerationError
from moderation.models import Decision, Video


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("tag", str, description="only videos a reviewer tagged with this tag name")]
    )
)
class VideoViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Videos and their pipeline state; POST a multipart file to ingest one."""

    permission_classes = [CanUploadOrReadOnly]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Video]:
        qs = Video.objects.order_by("-created_at")
        if self.action == "retrieve":
            qs = qs.prefetch_related("keyframes", "segments", "tags__tag", "tags__added_by")
        tag = self.request.query_params.get("tag", "").strip() if self.action == "list" else ""
        if tag:
            qs = qs.filter(tags__tag__name=tag)
        return qs

    def get_serializer_class(self) -> Any:
        if self.action == "retrieve":
            return VideoDetailSerializer
        if self.action == "create":
            return VideoUploadSerializer
        return VideoSerializer

    @extend_schema(request=VideoUploadSerializer, responses={201: VideoSerializer})
    def create(self, request: Request) -> Response:
        from moderation.media.ingest import video_ingest

        form = VideoUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            video = video_ingest(
                upload=data["file"],
                title=data.get("title", ""),
                description=data.get("description", ""),
                uploader=data.get("uploader", ""),
                external_id=data.get("external_id"),
                created_by=request.user,
            )
        except ModerationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(VideoSerializer(video, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("video", int, description="only the decisions about this video (its id)")]
    )
)
class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [CanReadContent]
    serializer_class = DecisionSerializer

    def get_queryset(self) -> QuerySet[Decision]:
        qs = Decision.objects.select_related("policy_version__policy", "model_version").order_by("-created_at")
        raw = self.request.query_params.get("video")
        if raw in (None, ""):
            return qs
        # int() accepts "²" and "１" (str.isdigit() is true for them) only to fail later; judge ASCII digits only.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise ValidationError({"video": "Expected a video id (a whole number)."})
        return qs.filter(video_id=int(raw))
