"""Browser screens of the media wing: the video list with its upload form, and one video's detail."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.middleware import HtmxDetails

from moderation.errors import ModerationError
from moderation.media import selectors
from moderation.media.forms import VideoUploadForm
from moderation.media.ingest import video_ingest
from moderation.media.models import Video
from moderation.media.services import video_media_verify
from moderation.media.shield import media_revealed
from workbench.forms import nul_checked_by_form
from workbench.pagination import WindowPaginator
from workbench.roles import Perm, permission_required
from workbench.throttles import upload_rate_refusal_text, upload_rate_wait


class HtmxHttpRequest(HttpRequest):
    """HttpRequest as HtmxMiddleware leaves it (typing only)."""

    htmx: HtmxDetails


# Multipart overhead allowed on top of the file itself before a request is refused unread.
_MULTIPART_SLACK = 64 * 1024


VIDEOS_PER_PAGE = 50


def _render_list(
    request: HtmxHttpRequest, form: VideoUploadForm, *, status: int = 200, upload_error: str = ""
) -> HttpResponse:
    external_id = request.GET.get("external_id", "").strip()[:200]
    shown_status = request.GET.get("status", "")
    shown_status = shown_status if shown_status in Video.Status.values else ""
    videos_seen = selectors.videos_listed_for(
        user=request.user, qs=selectors.video_list(external_id=external_id, status=shown_status)
    )
    page = WindowPaginator(videos_seen, VIDEOS_PER_PAGE).get_page(request.GET.get("page"))
    videos = list(page.object_list)
    context = {
        "videos": videos,
        "page": page,
        "external_id": external_id,
        # Those who do not see every video are told which ones they see (a colleague's upload is not listed
        # until it is decided), so an empty or short list is not taken for "nothing was uploaded".
        "sees_all": selectors.videos_all_open_to(user=request.user),
        "status": shown_status,
        "status_name": Video.Status(shown_status).label.lower() if shown_status else "",
        # The list's filters, for its pager and its polling (``?...&page=``).
        "filters": urlencode({k: v for k, v in (("external_id", external_id), ("status", shown_status)) if v}),
        "form": form,
        "upload_error": upload_error,
        "polling": selectors.video_any_in_flight(videos=videos),
    }
    template = "moderation/media/video_list.html"
    if request.htmx and request.method == "GET":
        template += "#rows"
    return render(request, template, context, status=status)


@require_GET
@permission_required(Perm.UPLOAD_VIDEO)
def video_list(request: HtmxHttpRequest) -> HttpResponse:
    return _render_list(request, VideoUploadForm())


@nul_checked_by_form
@require_http_methods(["GET", "POST"])
@permission_required(Perm.UPLOAD_VIDEO)
def video_upload(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        # A refused upload is answered at this address; opening it again (Enter in the address bar,
        # back/forward) was a blank 405 page: the form is on the video list.
        return redirect("moderation:video_list")
    limit = int(settings.WORKBENCH_UPLOAD_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + _MULTIPART_SLACK:
        # Refuse before Django reads (and spools to disk) a body that can only be rejected.
        message = f"This file is larger than the upload limit of {limit // (1024 * 1024)} MB."
        return _render_list(request, VideoUploadForm(), status=413, upload_error=message)
    wait = upload_rate_wait(request)
    if wait is not None:
        # The user's upload rate, shared with POST /api/videos/: the form again, saying when, not a bare 429 page.
        message = upload_rate_refusal_text(wait)
        refused = _render_list(request, VideoUploadForm(), status=429, upload_error=message)
        refused["Retry-After"] = str(wait)
        return refused

    form = VideoUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    started = timezone.now()
    try:
        video = video_ingest(
            upload=form.cleaned_data["file"],
            title=form.cleaned_data["title"],
            uploader=request.user.get_username(),
            created_by=request.user,
        )
    except ModerationError as exc:
        form.add_error("file", str(exc))
        return _render_list(request, form, status=400)
    if video.created_at < started and not selectors.video_open_to(user=request.user, video_id=video.pk):
        # The earlier upload sits in a restricted review queue: not named to other groups (its uploader is told).
        messages.info(request, selectors.video_already_uploaded_hidden_text(user=request.user, video_id=video.pk))
        return redirect("moderation:video_list")
    if video.created_at < started:
        # The same bytes were ingested before: video_ingest returned that video and queued nothing.
        messages.info(
            request,
            format_html(
                'This file was already uploaded: it is video <a href="{}">#{} “{}”</a>. Nothing new was queued.',
                reverse("moderation:video_detail", args=[video.pk]),
                video.pk,
                Truncator(video.title).chars(80),
            ),
        )
        return redirect("moderation:video_list")
    # Linked to the video's own page, which follows its processing live (walked: the list said so with no link).
    messages.success(
        request,
        format_html(
            '“{}” was uploaded and is queued for processing: <a href="{}">video #{}</a> follows it.',
            Truncator(str(video)).chars(80),
            reverse("moderation:video_detail", args=[video.pk]),
            video.pk,
        ),
    )
    return redirect("moderation:video_list")


@require_GET
def video_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    # Uploaders follow their videos; moderators open them from the review queue.
    if not (user.has_perm(Perm.UPLOAD_VIDEO) or user.has_perm(Perm.REVIEW_VIDEO)):
        raise PermissionDenied("Your role may not view videos.")
    selectors.video_open_or_404(user=user, video_id=pk)
    video = selectors.video_get(pk=pk)
    in_flight = video.status in selectors.IN_FLIGHT
    if request.htmx:
        response = render(
            request, "moderation/media/video_detail.html#status", {"video": video, "in_flight": in_flight}
        )
        if not in_flight and request.GET.get("was") == "in_flight":
            # Processing just finished: reload so keyframes and transcript appear.
            response["HX-Refresh"] = "true"
        return response
    keyframes = list(selectors.video_keyframes(video=video))
    segments = list(selectors.video_segments(video=video))
    context = {
        "video": video,
        "in_flight": in_flight,
        "media_check": video_media_verify(video=video, keyframes=keyframes, by=user),
        "keyframes": keyframes,
        "selected_keyframes": list(selectors.video_selected_keyframes(video=video)),
        "segments": segments,
        "speech_lines": [] if segments else selectors.video_speech_lines(video=video),
        # Paged as the list screens are (``_pager.html``), each page read alone: all of them made a 5 MB page.
        "comments_page": Paginator(selectors.VideoComments(video_id=video.pk), selectors.COMMENTS_PER_PAGE).get_page(
            request.GET.get("comments_page")
        ),
        # Shielded as on every other screen with the video's pictures: a moderator opening it from a pair or the
        # list saw its keyframes in full colour while the review screen kept them blurred (walk 21).
        "reveal": media_revealed(request),
    }
    return render(request, "moderation/media/video_detail.html", context)
