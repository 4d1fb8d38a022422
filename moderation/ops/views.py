from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from moderation.actions import Outcome, video_action
from moderation.errors import ModerationError
from moderation.inference.models import MissingDecisionRepair
from moderation.ops.checks import routing_recheck_prune, routing_recheck_whole_library
from moderation.ops.selectors import ops_dashboard, ops_policy_missing, ops_repro_failures, ops_routing
from moderation.ops.services import (
    ops_missing_decision_dismiss,
    ops_missing_decision_retry,
    ops_missing_decisions_retry,
    ops_policy_missing_repair,
    ops_routing_repair,
)
from moderation.policies.models import Policy
from moderation.reproduction.models import ReproRetrievalFailure
from moderation.reproduction.services import repro_retrieval_dismiss, repro_retrieval_retry
from workbench.csp_reports import csp_violations_recent
from workbench.form_routes import post_only
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_INTEGRATIONS)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Operations at a glance: every plot is drawn on the server and carries its numbers."""
    show = _failed_filter(request)
    context = {
        "ops": ops_dashboard(failed_filter=show),
        "worker_seen_seconds": settings.WORKER_SEEN_SECONDS,
        "csp_violations": csp_violations_recent(),
    }
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


def _missing_decision_action(
    request: HttpRequest, video_id: int, action: Callable[..., MissingDecisionRepair], done: Callable[[Any], str]
) -> HttpResponse:
    """Run ``action`` on one video's failed try (``video_action``: a refusal is a message): htmx gets the routing
    panel with the outcome at the list's top, a plain form the page, on the list it was on."""
    show = "dismissed" if request.POST.get("failed") == "dismissed" else "failing"
    return video_action(
        request,
        video_id,
        action=action,
        done=done,
        back=reverse("moderation:ops_dashboard") + ("?failed=dismissed" if show == "dismissed" else ""),
        panel=lambda outcome: _routing_panel(request, show=show, outcome=outcome),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def missing_decision_retry_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """A failed try's Retry: one more try at that video's missing decisions, on the infer queue."""
    return _missing_decision_action(
        request,
        video_id,
        ops_missing_decision_retry,
        lambda r: (
            f"Queued the missing decisions of video #{r.video_id} once more on the infer queue; "
            "a failure is listed here again with its error."
        ),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def missing_decision_dismiss_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """A given-up try's Dismiss: no longer counted nor queued; listed under "dismissed" (where Retry undoes it)."""
    return _missing_decision_action(
        request,
        video_id,
        ops_missing_decision_dismiss,
        lambda r: (
            f"Dismissed video #{r.video_id}: it is no longer counted nor queued by the repair; "
            "the dismissed filter lists it, and its Retry queues it again."
        ),
    )


def _repro_failed_action(
    request: HttpRequest, video_id: int, action: Callable[..., ReproRetrievalFailure], done: Callable[[Any], str]
) -> HttpResponse:
    """Run ``action`` on one video listed without reproduction candidates: htmx gets that list with the outcome,
    a plain form the page with it as a message."""

    def panel(outcome: Outcome) -> HttpResponse:
        context = {"ops": {"repro_failed": ops_repro_failures()}, "repro_outcome": outcome}
        return render(request, "moderation/ops/dashboard.html#repro_failed", context)

    return video_action(
        request, video_id, action=action, done=done, back=reverse("moderation:ops_dashboard"), panel=panel
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def repro_failed_retry_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """Retry for a video without reproduction candidates: its search, once more, on the media queue."""
    return _repro_failed_action(
        request,
        video_id,
        repro_retrieval_retry,
        lambda f: (
            f"Queued the search for video #{f.video_id}'s reproduction candidates on the media queue; "
            "it leaves this list once they are found, or is listed again with its new error."
        ),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def repro_failed_dismiss_view(request: HttpRequest, video_id: int) -> HttpResponse:
    """Dismiss for a video without reproduction candidates: recorded, off the list (counted apart)."""
    return _repro_failed_action(
        request,
        video_id,
        repro_retrieval_dismiss,
        lambda f: (
            f"Dismissed video #{f.video_id}: it is no longer listed (counted apart) and stays uncompared with "
            "earlier uploads; a later failure of its search lists it again."
        ),
    )


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def routing_recheck(request: HttpRequest) -> HttpResponse:
    """The routing panel's "Check now": the whole library read once (for a change made round the database's
    triggers), the consistent videos' rows dropped; a POST, since a GET of the page writes nothing."""
    added = routing_recheck_whole_library()
    routing_recheck_prune()
    if added:
        text = (
            f"Checked the whole library: {added} inconsistently routed or half-decided "
            f"video{'s were' if added != 1 else ' was'} not listed by the database's triggers (a change made round "
            f"them) and {'are' if added != 1 else 'is'} counted now."
        )
    else:
        text = "Checked the whole library: the figures below already counted every inconsistent video."
    messages.success(request, text)
    return redirect(reverse("moderation:ops_dashboard") + "#ops-routing")


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def routing_repair(request: HttpRequest) -> HttpResponse:
    """The routing panel's button: route stranded videos again, mend inconsistent routing and queue missing
    decisions (idempotent), at most
    ``settings.ROUTING_REPAIR_BATCH`` of each a click; the message says how many are left for the next click."""
    result = ops_routing_repair()
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
@post_only
def missing_decisions_retry_view(request: HttpRequest) -> HttpResponse:
    """The routing panel's Retry: one more try for each half-decided video given up after failing."""
    queued = ops_missing_decisions_retry()
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


@permission_required(Perm.MANAGE_INTEGRATIONS)
@require_GET
def policy_missing(request: HttpRequest, pk: int) -> HttpResponse:
    """An auto-applied policy's decided videos without its verdict: how many, a page of them with each one's
    repair state, and "Repair now" (a POST). Reading writes nothing."""
    policy = get_object_or_404(Policy, pk=pk)
    missing = ops_policy_missing(policy=policy, page=request.GET.get("page"), now=timezone.now())
    return render(request, "moderation/ops/policy_missing.html", {"policy": policy, "missing": missing})


@permission_required(Perm.MANAGE_INTEGRATIONS)
@post_only
def policy_missing_repair(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Repair now" on a policy's videos without its verdict: their missing decisions queued on the infer queue,
    at most ``ROUTING_REPAIR_BATCH`` a press; the message says how many, and how many are left."""
    policy = get_object_or_404(Policy, pk=pk)
    try:
        result = ops_policy_missing_repair(policy=policy, by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        messages.error(request, str(exc))
    else:
        if result.queued:
            text = (
                f"Queued the missing decisions of {_videos(len(result.queued), 'half-decided')} on the infer queue; "
                "each leaves this list once decided (a failure is listed with its error on the ops page)."
            )
            if result.left.n:
                text += (
                    f" {result.left} more still to queue (at most {settings.ROUTING_REPAIR_BATCH} a press): "
                    "press Repair now again to continue."
                )
            messages.success(request, text)
        else:
            messages.info(
                request,
                "Nothing to queue: every video listed is queued already, given up after failing (the ops page's "
                "Retry), or dismissed.",
            )
    return redirect("moderation:ops_policy_missing", pk=pk)
