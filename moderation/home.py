"""The moderation app's home-page panels (``workbench.home``): reviewers' queues, policy drafts and
publishes, and the media pipeline's health for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.utils import timezone

from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _review(user: User) -> dict[str, Any]:
    from moderation.review.selectors import review_home_for

    return review_home_for(user=user)


def _policies(user: User) -> dict[str, Any]:
    from moderation.policies.models import PolicyVersion
    from moderation.tagging.selectors import tag_curation_counts

    versions = PolicyVersion.objects.select_related("policy", "created_by")
    Status = PolicyVersion.Status
    # The latest drafts and the latest published versions in one statement (a UNION ALL of the two lists, each
    # ordered and limited as before), split here; latest first again (a union's rows come in no promised order).
    latest = sorted(
        versions.filter(status=Status.DRAFT)
        .order_by("-created_at")[:8]
        .union(versions.filter(status=Status.PUBLISHED).order_by("-created_at")[:5], all=True),
        key=lambda v: v.created_at,
        reverse=True,
    )
    return {
        "drafts": [v for v in latest if v.status == Status.DRAFT],
        "published": [v for v in latest if v.status == Status.PUBLISHED],
        # What the curation screen lists as waiting for this editor: a proposal seen only on videos hidden from
        # them (not decided yet, a restricted queue's) is counted there apart, not as one to curate.
        "tag_proposals": tag_curation_counts(user=user)["pending"],
    }


def _ops(user: User) -> dict[str, Any]:
    from moderation.inference.models import ModelVersion
    from moderation.media.models import Video

    since = timezone.now() - timedelta(days=1)
    videos = Video.objects.aggregate(
        total=Count("pk"),
        processing=Count("pk", filter=~Q(status__in=[Video.Status.READY, Video.Status.FAILED])),
        failed_day=Count("pk", filter=Q(status=Video.Status.FAILED, created_at__gte=since)),
        ready=Count("pk", filter=Q(status=Video.Status.READY)),
    )
    return {"videos": videos, "serving": list(ModelVersion.objects.filter(is_serving=True).order_by("name"))}


def _integrations(user: User) -> dict[str, Any]:
    from moderation.integrations.selectors import integrations_home_counts

    return integrations_home_counts()


def register() -> None:
    home_panel_register(
        HomePanel(key="review", perm=Perm.REVIEW_VIDEO, template="home/_review.html", context=_review, order=10)
    )
    home_panel_register(
        HomePanel(key="policies", perm=Perm.EDIT_POLICY, template="home/_policies.html", context=_policies, order=30)
    )
    home_panel_register(
        HomePanel(key="ops", perm=Perm.MANAGE_TRAINING, template="home/_ops.html", context=_ops, order=40)
    )
    # Whoever manages integrations without another role (the permission given alone) was told "no role yet", with
    # Integrations and Operations in the header and nothing to start from on the page.
    home_panel_register(
        HomePanel(
            key="integrations",
            perm=Perm.MANAGE_INTEGRATIONS,
            template="home/_integrations.html",
            context=_integrations,
            order=45,
        )
    )
