"""Read-only policy pages: every signed-in user may read the taxonomy they are judged against."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from moderation.policies import selectors
from workbench.roles import Perm


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "moderation/policies/policy_list.html",
        {"policies": selectors.policy_list(), "can_edit": request.user.has_perm(Perm.EDIT_POLICY)},
    )


@login_required
def policy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    policy, active, versions = selectors.policy_detail(policy_id=pk)
    return render(
        request,
        "moderation/policies/policy_detail.html",
        {
            "policy": policy,
            "active": active,
            "versions": versions,
            "rows": selectors.policy_taxonomy_rows(version=active) if active else [],
            "can_edit": request.user.has_perm(Perm.EDIT_POLICY),
        },
    )
