"""Policy reads: the list and detail pages, and the label choices review and annotation forms offer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from moderation.policies.models import Policy, PolicyVersion


@dataclass
class LabelGroup:
    name: str
    choices: list[tuple[str, str]] = field(default_factory=list)  # (label key, English name)


def policy_list() -> QuerySet[Policy]:
    """Every policy with its versions (newest first) prefetched; ``active_versions`` holds the live one."""
    return Policy.objects.order_by("name").prefetch_related(
        "versions",
        Prefetch("versions", queryset=PolicyVersion.objects.filter(is_active=True), to_attr="active_versions"),
    )


def policy_detail(*, policy_id: int) -> tuple[Policy, PolicyVersion | None, list[PolicyVersion]]:
    """The policy, its active version (``None`` if none is active) and all its versions, newest first."""
    policy = get_object_or_404(Policy, pk=policy_id)
    versions = list(policy.versions.order_by("-number"))
    active = next((v for v in versions if v.is_active), None)
    return policy, active, versions


def policy_taxonomy_rows(*, version: PolicyVersion) -> list[dict[str, Any]]:
    """One row per fine tag, with ``major_rowspan`` set on the first tag of each major category."""
    rows: list[dict[str, Any]] = []
    for major in version.taxonomy:
        tags = major.get("tags", [])
        for i, tag in enumerate(tags):
            rows.append(
                {
                    "major_key": major.get("key", ""),
                    "major_name": major.get("name", ""),
                    "major_rowspan": len(tags) if i == 0 else 0,
                    "key": tag.get("key", ""),
                    "name": tag.get("name", ""),
                    "keywords": tag.get("keywords", []),
                }
            )
    return rows


def policy_label_groups(*, version: PolicyVersion) -> list[LabelGroup]:
    """Labels of ``version`` grouped by major category, the safe label first, for ``<select>`` menus."""
    groups = [LabelGroup(name="Not a violation", choices=[(version.safe_label, "Non-violative")])]
    for major in version.taxonomy:
        groups.append(
            LabelGroup(
                name=major.get("name") or major.get("key", ""),
                choices=[(t["key"], t.get("name", t["key"])) for t in major.get("tags", [])],
            )
        )
    return groups
