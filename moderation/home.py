"""The moderation app's home-page panels (``workbench.home``): reviewers' queues, policy drafts and
publishes, and the media pipeline's health for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from workbench.db import aggregate_row
from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _review_counts(user: User) -> dict[str, QuerySet[Any]]:
    from moderation.review.selectors import review_home_rows

    return review_home_rows(user=user)


def _review(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from moderation.review.selectors import review_home_for

    return review_home_for(user=user, counted=counted)


def _policies_counts(user: User) -> dict[str, QuerySet[Any]]:
    from moderation.tagging.selectors import tag_curation_row

    return {"tag_curation": tag_curation_row(user=user)}


def _policies(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from moderation.policies.models import PolicyVersion

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
        "tag_proposals": counted["tag_curation"]["pending"],
    }


def _ops_counts(user: User) -> dict[str, QuerySet[Any]]:
    from moderation.media.models import Video

    since = timezone.now() - timedelta(days=1)
    videos = aggregate_row(
        Video.objects.all(),
        total=Count("pk"),
        processing=Count("pk", filter=~Q(status__in=[Video.Status.READY, Video.Status.FAILED])),
        failed_day=Count("pk", filter=Q(status=Video.Status.FAILED, created_at__gte=since)),
        ready=Count("pk", filter=Q(status=Video.Status.READY)),
    )
    return {"videos": videos}


def _ops(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from moderation.inference.models import ModelVersion

    return {
        "videos": counted["videos"],
        "serving": list(ModelVersion.objects.filter(is_serving=True).order_by("name")),
    }


def _integrations_counts(user: User) -> dict[str, QuerySet[Any]]:
    from moderation.integrations.selectors import integrations_home_rows

    return integrations_home_rows()


def _integrations(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from moderation.integrations.selectors import integrations_home_counts

    return integrations_home_counts(counted=counted)


def register() -> None:
    for key, perm, context, counts, order in (
        ("review", Perm.REVIEW_VIDEO, _review, _review_counts, 10),
        ("policies", Perm.EDIT_POLICY, _policies, _policies_counts, 30),
        ("ops", Perm.MANAGE_TRAINING, _ops, _ops_counts, 40),
        # Whoever manages integrations without another role (the permission given alone) was told "no role yet",
        # with Integrations and Operations in the header and nothing to start from on the page.
        ("integrations", Perm.MANAGE_INTEGRATIONS, _integrations, _integrations_counts, 45),
    ):
        home_panel_register(
            HomePanel(key=key, perm=perm, template=f"home/_{key}.html", context=context, counts=counts, order=order)
        )
