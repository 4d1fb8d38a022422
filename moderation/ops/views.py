from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from moderation.inference.services import missing_decisions_retry
from moderation.ops.selectors import ops_dashboard
from moderation.review.services import review_routing_repair
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_INTEGRATIONS)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Operations at a glance: every plot is drawn on the server and carries its numbers."""
    return render(request, "moderation/ops/dashboard.html", {"ops": ops_dashboard()})


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_POST
def routing_repair(request: HttpRequest) -> HttpResponse:
    """The routing panel's button: route stranded videos again and queue missing decisions (idempotent), at most
    ``settings.ROUTING_REPAIR_BATCH`` of each a click; the message says how many are left for the next click."""
    result = review_routing_repair()
    done = []
    if result.rerouted:
        done.append(f"routed {_videos(len(result.rerouted), 'stranded')} again as the queues say now")
    if result.decisions_queued:
        done.append(
            f"queued the missing decisions of {_videos(len(result.decisions_queued), 'half-decided')} on the infer queue"
        )
    text = "; ".join(done) or "nothing to repair: no stranded video, and no half-decided video left to queue"
    text = text[0].upper() + text[1:] + "."
    if result.stranded_left or result.missing_left:
        left = [
            _videos(n, kind)
            for n, kind in ((result.stranded_left, "stranded"), (result.missing_left, "half-decided"))
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
