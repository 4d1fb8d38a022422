from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from moderation.errors import ModerationError
from moderation.inference.models import MissingDecisionRepair
from moderation.inference.services import missing_decisions_retry
from moderation.ops.selectors import ops_dashboard, ops_routing
from moderation.ops.services import ops_missing_decision_dismiss, ops_missing_decision_retry
from moderation.review.services import review_routing_repair
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_INTEGRATIONS)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Operations at a glance: every plot is drawn on the server and carries its numbers."""
    show = _failed_filter(request)
    context = {"ops": ops_dashboard(failed_filter=show), "worker_seen_seconds": settings.WORKER_SEEN_SECONDS}
    return render(request, "moderation/ops/dashboard.html", context)


def _failed_filter(request: HttpRequest) -> str:
    return "dismissed" if request.GET.get("failed") == "dismissed" else "failing"


def _routing_panel(request: HttpRequest, *, show: str, outcome: tuple[str, str] | None = None) -> HttpResponse:
    """The routing panel alone (htmx): its numbers and the list of failed tries as they are now, with what the
    action did (``outcome``: level, text) said at the list's top."""
    routing = ops_routing(now=timezone.now(), failed_filter=show)
    context = {"ops": {"routing": routing}, "outcome": outcome}
    return render(request, "moderation/ops/dashboard.html#routing", context)


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_GET
def missing_decisions_list(request: HttpRequest) -> HttpResponse:
    """The failed-tries list's filter (failing / dismissed): htmx gets the routing panel, a plain link the page."""
    show = _failed_filter(request)
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect(reverse("moderation:ops_dashboard") + ("?failed=dismissed" if show == "dismissed" else ""))
    return _routing_panel(request, show=show)


def _one_video_action(
    request: HttpRequest, video_id: int, action: Callable[..., MissingDecisionRepair], done: Callable[[Any], str]
) -> HttpResponse:
    """Run ``action`` on one video's failed try and say what came of it: a refused action (the video deleted
    meanwhile, a double click, nothing left to do) is a message, never an error page."""
    show = "dismissed" if request.POST.get("failed") == "dismissed" else "failing"
    user = cast(User, request.user)  # permission_required let only a signed-in user through
    try:
        outcome = ("success", done(action(video_id=video_id, by=user)))
    except ModerationError as exc:
        outcome = ("error", str(exc))
    if not request.htmx:  # type: ignore[attr-defined]
        getattr(messages, outcome[0])(request, outcome[1])
        return redirect(reverse("moderation:ops_dashboard") + ("?failed=dismissed" if show == "dismissed" else ""))
    return _routing_panel(request, show=show, outcome=outcome)


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_POST
def missing_decision_retry_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """A failed try's Retry: one more try at that video's missing decisions, on the infer queue."""
    return _one_video_action(
        request,
        video_id,
        ops_missing_decision_retry,
        lambda r: (
            f"Queued the missing decisions of video #{r.video_id} once more on the infer queue; "
            "a failure is listed here again with its error."
        ),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_POST
def missing_decision_dismiss_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """A given-up try's Dismiss: no longer counted nor queued; listed under "dismissed" (where Retry undoes it)."""
    return _one_video_action(
        request,
        video_id,
        ops_missing_decision_dismiss,
        lambda r: (
            f"Dismissed video #{r.video_id}: it is no longer counted nor queued by the repair; "
            "the dismissed filter lists it, and its Retry queues it again."
        ),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_POST
def routing_repair(request: HttpRequest) -> HttpResponse:
    """The routing panel's button: route stranded videos again, mend inconsistent routing and queue missing
    decisions (idempotent), at most
    ``settings.ROUTING_REPAIR_BATCH`` of each a click; the message says how many are left for the next click."""
    result = review_routing_repair()
    done = []
    if result.rerouted:
        done.append(f"routed {_videos(len(result.rerouted), 'stranded')} again as the queues say now")
    if result.mended:
        done.append(
            f"mended the routing of {_videos(len(result.mended), 'inconsistently routed')} (left by older code)"
        )
    if result.decisions_queued:
        done.append(
            f"queued the missing decisions of {_videos(len(result.decisions_queued), 'half-decided')} on the infer queue"
        )
    text = "; ".join(done) or (
        "nothing to repair: no stranded video, no inconsistent routing, and no half-decided video left to queue"
    )
    text = text[0].upper() + text[1:] + "."
    if result.stranded_left or result.missing_left or result.orphaned_left:
        left = [
            _videos(n, kind)
            for n, kind in (
                (result.stranded_left, "stranded"),
                (result.orphaned_left, "inconsistently routed"),
                (result.missing_left, "half-decided"),
            )
            if n
        ]
        text += (
            f" {' and '.join(left)} still to repair (at most {settings.ROUTING_REPAIR_BATCH} of each a click): click Repair "
            "routing again to continue, or run manage.py repair_routing --all."
        )
    messages.success(request, text)
    return redirect("moderation:ops_dashboard")


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_POST
def missing_decisions_retry_view(request: HttpRequest) -> HttpResponse:
    """The routing panel's Retry: one more try for each half-decided video given up after failing."""
    queued = missing_decisions_retry()
    if queued:
        messages.success(
            request,
            f"Queued the missing decisions of {_videos(len(queued), 'half-decided')} once more on the infer queue; "
            "a failure is listed here again with its error.",
        )
    else:
        messages.info(request, "No half-decided video is waiting for a retry.")
    return redirect("moderation:ops_dashboard")


def _videos(n: int, kind: str) -> str:
    return f"{n} {kind} video{'s' if n != 1 else ''}"
