from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from moderation.ops.selectors import ops_dashboard
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_INTEGRATIONS)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Operations at a glance: every plot is drawn on the server and carries its numbers."""
    return render(request, "moderation/ops/dashboard.html", {"ops": ops_dashboard()})
