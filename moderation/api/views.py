from __future__ import annotations

from typing import Any, TypeVar, cast

from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from moderation.api.permissions import CanReadContent, CanUploadOrReadOnly
from moderation.api.serializers import (
    DecisionSerializer,
    LabelSerializer,
    VerdictSerializer,
    VideoDetailSerializer,
    VideoDuplicateSerializer,
    VideoSerializer,
    VideoSubmitSerializer,
)
from moderation.errors import ModerationError
from moderation.integrations.api import (
    IntegrationAuthentication,
    IntegrationRateThrottle,
    IsIntegration,
    request_integration,
)
from moderation.integrations.selectors import parse_since, video_error_for, videos_visible_to, videos_with_external_id
from moderation.integrations.services import IdempotencyConflict, video_submit
from moderation.media.ingest import ImportPathForbidden
from moderation.media.selectors import (
    video_already_uploaded_hidden_text,
    video_not_open_reason,
    video_open_to,
    videos_open_to,
)
from moderation.models import Decision, ItemLabel, Video
from moderation.ops.selectors import video_verdict
from workbench.pagination import WindowCursorPagination, WindowPageNumberPagination
from workbench.parsers import StorableJSONParser
from workbench.throttles import UploadRateThrottle, UserRateThrottle
from workbench.tokens import ExpiringTokenAuthentication

# Users (Token or session) and platform integrations (Integration <token>). The token first: a call without
# credentials is a 401 with ``WWW-Authenticate: Token`` (``settings.API_AUTHENTICATION_CLASSES``), not a 403.
USER_OR_INTEGRATION_AUTH: list[type[BaseAuthentication]] = [
    ExpiringTokenAuthentication,
    SessionAuthentication,
    IntegrationAuthentication,
]

SINCE = OpenApiParameter(
    "since", OpenApiTypes.DATETIME, description="only rows created or changed at or after this ISO 8601 instant"
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    description="a retried POST with the same key returns the first result (and never a second video)",
)

_Row = TypeVar("_Row", bound=Model)


def _whole_number(raw: str) -> int | None:
    """A query parameter's whole number (ASCII digits, at most 18 of them), else None: int() accepts "²"
    and "１" (str.isdigit() is true for them) only to fail later, and "-1" or "1.5" are no count or id."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


class SyncCursorPagination(WindowCursorPagination):
    """Oldest first from ``since``; follow ``next`` until it is null, keep the last row's time. The visibility rule
    is applied to a window of rows past the cursor, not the whole table (``WindowCursorPagination``)."""

    page_size = 100
    max_page_size = 500
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        """``?page_size=``: absent, 100; present, 1 or more (above 500, 500) or a 400 that says so (a bad
        value was silently replaced by 100, so a client never learnt that its pages were not its size)."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = _whole_number(raw)
        if size is None or size < 1:
            raise ValidationError(
                {
                    "page_size": f"Expected a page size (a whole number from 1 to {self.max_page_size}), got "
                    f"{raw.strip()[:40]!r}; leave the parameter out for {self.page_size} a page."
                }
            )
        return min(size, self.max_page_size)


class _IntegrationAwareViewSet(viewsets.GenericViewSet):
    """Integration tokens accepted next to users; an integration sees only the videos it submitted."""

    authentication_classes = USER_OR_INTEGRATION_AUTH
    # A platform's calls count against its integration's rate, a user's (session or token) against theirs.
    throttle_classes = [IntegrationRateThrottle, UserRateThrottle]

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "integration": request_integration(self.request)}

    def _since(self) -> Any:
        try:
            return parse_since(self.request.query_params.get("since"))
        except ModerationError as exc:
            raise ValidationError({"since": str(exc)}) from exc

    def _video_id(self) -> int | None:
        """``?video=``: absent, no filter; present, a video id or a 400 that says so (an empty or bad
        value filtered nothing, so a client's typo listed every item)."""
        raw = self.request.query_params.get("video")
        if raw is None:
            return None
        video_id = _whole_number(raw)
        if video_id is None:
            raise ValidationError(
                {
                    "video": f"Expected a video id (a whole number), got {raw.strip()[:40]!r}; leave the parameter out for every video."
                }
            )
        return video_id

    def _sync_queryset(self, qs: QuerySet[_Row], *, changed: str) -> QuerySet[_Row]:
        """A pull-sync list (decisions, labels): ``?video=`` one video's rows, ``?since=`` the rows whose
        ``changed`` time (the cursor's order) is at or after it, then only what the caller may see."""
        video_id = self._video_id()
        if video_id is not None:
            qs = qs.filter(video_id=video_id)
        since = self._since()
        if since is not None:
            qs = qs.filter(**{f"{changed}__gte": since})
        return self._visible(qs, field="video_id")

    def _visible(self, qs: QuerySet[_Row], *, field: str) -> QuerySet[_Row]:
        """Only what the caller may see: an integration its own videos; a user those the restricted review
        queues leave open to them (``videos_open_to``)."""
        integration = request_integration(self.request)
        if integration is None:
            return videos_open_to(user=self.request.user, qs=qs, field=field)
        return videos_visible_to(integration=integration, qs=qs, field=field)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="only videos a reviewer tagged with this tag name"),
            OpenApiParameter(
                "external_id",
                str,
                description="only the video with this external id: a platform's own id for it (never another "
                "platform's); for a user, the workbench's (uploads, manifests, imports)",
            ),
        ]
    )
)
class VideoViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IntegrationAwareViewSet):
    """Videos and their pipeline state; POST a multipart file (or a server path) to submit one."""

    permission_classes = [CanUploadOrReadOnly | IsIntegration]
    parser_classes = [MultiPartParser, FormParser, StorableJSONParser]
    # The visibility rule is applied to a page's worth of rows, not the whole library (``WindowPaginator``).
    pagination_class = WindowPageNumberPagination

    def get_queryset(self) -> QuerySet[Video]:
        qs = Video.objects.order_by("-created_at", "-pk")
        if self.action == "retrieve":
            qs = qs.prefetch_related("keyframes", "segments", "tags__tag", "tags__added_by")
        tag = self._text_filter("tag", what="a tag name")
        if tag:
            qs = qs.filter(tags__tag__name=tag)
        integration = request_integration(self.request)
        shown: QuerySet[Any] = videos_with_external_id(integration=integration, qs=self._visible(qs, field="pk"))
        external_id = self._text_filter("external_id", what="the video's external id")
        if external_id:  # the id the caller is shown (``videos_with_external_id``): a platform's own, else ours
            shown = shown.filter(shown_external_id=external_id)
        return shown

    def list_windowed(self) -> bool:
        """Whether the list's page is read from a window of the newest videos (``WindowPageNumberPagination``): for
        a user, whom the visibility rule leaves most of them; not for a platform, which sees only its own."""
        return request_integration(self.request) is None

    def get_object(self) -> Any:
        """The video of ``{id}``; a 404 that says why to a user (``video_not_open_reason``: the same words for a
        video hidden from them and a missing one), where a script read "No Video matches the given query." for a
        colleague's upload not decided yet. A platform's 404 is about its own videos: unchanged."""
        try:
            return super().get_object()
        except Http404 as exc:
            if request_integration(self.request) is not None:
                raise
            pk = str(self.kwargs.get(self.lookup_url_kwarg or self.lookup_field, ""))
            video_id = int(pk) if pk.isascii() and pk.isdigit() and len(pk) <= 18 else None
            raise NotFound(video_not_open_reason(user=self.request.user, video_id=video_id)) from exc

    def _text_filter(self, name: str, *, what: str) -> str:
        """A list's ``?name=``: absent, no filter; present, its text or a 400 when blank. ``?external_id=`` with
        an empty variable listed every video, and a platform took the first for the one it had asked about."""
        if self.action != "list" or name not in self.request.query_params:
            return ""
        value = self.request.query_params[name].strip()
        if not value:
            raise ValidationError({name: f"Empty; give {what}, or leave the parameter out for every video."})
        return value

    def get_throttles(self) -> list[BaseThrottle]:
        """A submit counts against the user's upload rate too (UPLOAD_RATE_LIMIT, one count with the upload
        form); reads only against their API request rate."""
        throttles = super().get_throttles()
        if self.action == "create":
            throttles.append(UploadRateThrottle())
        return throttles

    def get_serializer_class(self) -> Any:
        if self.action == "retrieve":
            return VideoDetailSerializer
        if self.action == "create":
            return VideoSubmitSerializer
        if self.action == "verdict":
            return VerdictSerializer
        return VideoSerializer

    @extend_schema(
        request={"multipart/form-data": VideoSubmitSerializer, "application/json": VideoSubmitSerializer},
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: VideoSerializer,
            200: OpenApiResponse(
                VideoDuplicateSerializer,
                description="an integration sent these bytes before: its earlier video, plus `duplicate_of` "
                "(`id`, `external_id`: the video as you know it) and `detail` (which of this request's fields "
                "were not recorded; the video keeps what was sent first); for a user, when the bytes are a video "
                "hidden from them (a restricted review queue's), only `detail`",
            ),
            400: OpenApiResponse(description="no file and no path, a path outside MEDIA_IMPORT_ROOTS, …"),
            403: OpenApiResponse(
                description="a user's `path` in a platform integration's import folder (integration-<id>/): only "
                "those who manage integrations may import from there"
            ),
            422: OpenApiResponse(description="the Idempotency-Key was used for a different request"),
        },
        description=(
            "Submit a video: a multipart `file`, or `path` on the server (inside MEDIA_IMPORT_ROOTS), with the "
            "platform's `external_id` and metadata. With an `Idempotency-Key` header a retried request returns "
            "the first result (header `Idempotent-Replayed: true`)."
        ),
    )
    def create(self, request: Request) -> Response:
        form = VideoSubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        integration = request_integration(request)
        started = timezone.now()
        try:
            submitted = video_submit(
                integration=integration,
                user=cast(User, request.user) if integration is None else None,
                idempotency_key=request.headers.get("Idempotency-Key", ""),
                upload=data.get("file"),
                path=data.get("path", ""),
                title=data.get("title", ""),
                description=data.get("description", ""),
                uploader=data.get("uploader", ""),
                external_id=data.get("external_id"),
                comments=data.get("comments") or [],
            )
        except IdempotencyConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except ImportPathForbidden as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except ModerationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if (
            integration is None
            and submitted.video.created_at < started
            and not video_open_to(user=request.user, video_id=submitted.video.pk)
        ):
            # The same bytes sit in a restricted review queue: not described to a user outside its groups
            # (as the upload form says it; its uploader is told where it went).
            detail = video_already_uploaded_hidden_text(user=request.user, video_id=submitted.video.pk)
            return Response({"detail": detail}, status=status.HTTP_200_OK)
        video = videos_with_external_id(integration=integration, qs=Video.objects.filter(pk=submitted.video.pk)).get()
        body = VideoSerializer(video, context=self.get_serializer_context()).data
        if submitted.copy_of is not None:
            body["duplicate_of"] = {"id": video.pk, "external_id": submitted.copy_of.external_id}
            body["detail"] = submitted.copy_notice
        response = Response(body, status=submitted.status)
        if submitted.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(responses={200: VerdictSerializer})
    @action(detail=True, methods=["get"], url_path="verdict")
    def verdict(self, request: Request, pk: str | None = None) -> Response:
        """The current outcome: model decision, human review, adjudication, policy version, final or not."""
        video, integration = self.get_object(), request_integration(request)
        verdict = video_verdict(video=video)
        shown = {
            "external_id": video.shown_external_id,
            "error": video_error_for(integration=integration, video=video) if verdict["error"] else "",
        }
        return Response(VerdictSerializer({**verdict, **shown}).data)


class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IntegrationAwareViewSet):
    """Model decisions, oldest first, cursor-paginated; ``?since=`` for pull sync, ``?video=`` for one video."""

    permission_classes = [CanReadContent | IsIntegration]
    serializer_class = DecisionSerializer
    pagination_class = type("DecisionCursor", (SyncCursorPagination,), {"ordering": ("created_at", "id")})

    def get_queryset(self) -> QuerySet[Decision]:
        qs = Decision.objects.select_related("policy_version__policy", "model_version")
        return self._sync_queryset(qs, changed="created_at")

    @extend_schema(
        parameters=[
            SINCE,
            OpenApiParameter("video", OpenApiTypes.INT, description="only the decisions about this video (its id)"),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class LabelViewSet(mixins.ListModelMixin, _IntegrationAwareViewSet):
    """Trusted labels (human review, adjudication, imports) by last change, oldest first, for pull sync."""

    permission_classes = [CanReadContent | IsIntegration]
    serializer_class = LabelSerializer
    pagination_class = type("LabelCursor", (SyncCursorPagination,), {"ordering": ("updated_at", "id")})

    def get_queryset(self) -> QuerySet[ItemLabel]:
        qs = ItemLabel.objects.select_related("video", "policy_version__policy")
        qs = self._sync_queryset(qs, changed="updated_at")
        return videos_with_external_id(integration=request_integration(self.request), qs=qs, field="video_id")

    @extend_schema(
        parameters=[
            SINCE,
            OpenApiParameter("video", OpenApiTypes.INT, description="only the labels of this video (its id)"),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
