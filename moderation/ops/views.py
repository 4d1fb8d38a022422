from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

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
    """The routing panel's button: route stranded videos again and queue missing decisions (idempotent)."""
    result = review_routing_repair()
    messages.success(
        request,
        f"Routed {len(result.rerouted)} stranded video{'s' if len(result.rerouted) != 1 else ''} again as the "
        f"queues say now; queued the missing decisions of {len(result.decisions_queued)} half-decided "
        f"video{'s' if len(result.decisions_queued) != 1 else ''} on the infer queue.",
    )
    return redirect("moderation:ops_dashboard")
