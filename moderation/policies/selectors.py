"""Policy reads: list and detail pages, label choices for review forms, version diffs and the
impact preview of a draft."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.taxonomy import TaxonomyChange, taxonomy_diff

DEFAULT_IMPACT_SAMPLE = 200
MAX_IMPACT_SAMPLE = 2000


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
                    "criteria": tag.get("criteria", []),
                    "severities": tag.get("severities", []),
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


def policy_version_get(*, version_id: int) -> PolicyVersion:
    return get_object_or_404(PolicyVersion.objects.select_related("policy", "created_by"), pk=version_id)


def policy_versions_pair(*, policy_id: int, a_id: int, b_id: int) -> tuple[PolicyVersion, PolicyVersion]:
    """Two versions of one policy (404 if either is missing or belongs to another policy)."""
    versions = {v.pk: v for v in PolicyVersion.objects.filter(policy_id=policy_id, pk__in=[a_id, b_id])}
    if a_id not in versions or b_id not in versions:
        raise PolicyVersion.DoesNotExist  # turned into a 404 by the view
    return versions[a_id], versions[b_id]


def policy_diff(a: PolicyVersion, b: PolicyVersion) -> list[TaxonomyChange]:
    """Everything that changed from version ``a`` to version ``b``: settings first, then the taxonomy."""
    changes = [
        TaxonomyChange("setting_changed", category=label, before=str(getattr(a, attr)), after=str(getattr(b, attr)))
        for attr, label in (("safe_label", "Non-violative label"), ("output_format", "Output format"))
        if getattr(a, attr) != getattr(b, attr)
    ]
    return changes + taxonomy_diff(a.taxonomy, b.taxonomy)


@dataclass
class ImpactItem:
    video_id: int
    title: str
    recorded_label: str  # what the model that decided the item actually said
    old_label: str  # the baseline under the active version
    new_label: str  # the baseline under the draft
    old_name: str = ""
    new_name: str = ""


@dataclass
class LabelCount:
    label: str
    name: str
    before: int  # items with this label under the active version
    after: int  # ... under the draft

    @property
    def delta(self) -> int:
        return self.after - self.before


@dataclass
class ImpactPreview:
    draft: PolicyVersion
    active: PolicyVersion | None
    sample_size: int
    checked: int = 0
    flips: list[ImpactItem] = field(default_factory=list)
    label_counts: list[LabelCount] = field(default_factory=list)  # most common first
    seconds: float = 0.0


def policy_impact_preview(*, draft: PolicyVersion, sample_size: int = DEFAULT_IMPACT_SAMPLE) -> ImpactPreview:
    """Which decisions would flip if ``draft`` replaced the active version. Writes nothing.

    The sample is the ``sample_size`` videos most recently decided under the active version. The
    evidence baseline runs on each under the active version and under the draft, so a flip is caused
    by the policy edit alone and not by a difference between the baseline and the serving model
    (whose recorded label is shown alongside).
    """
    # Imported here: inference imports policies, not the other way round at module load.
    from moderation.inference.backends import get_backend
    from moderation.inference.models import Decision
    from moderation.inference.services import content_bundle_for
    from moderation.media.models import Video

    started = time.perf_counter()
    sample_size = max(1, min(int(sample_size), MAX_IMPACT_SAMPLE))
    active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    preview = ImpactPreview(draft=draft, active=active, sample_size=sample_size)
    if active is None:
        return preview
    videos = list(
        Video.objects.filter(decisions__policy_version=active)
        .annotate(last_decided=Max("decisions__created_at"))
        .order_by("-last_decided", "-pk")
        .prefetch_related("segments", "keyframes")[:sample_size]
    )
    recorded: dict[int, str] = {}
    for video_id, label in (
        Decision.objects.filter(policy_version=active, video__in=[v.pk for v in videos])
        .order_by("video_id", "-created_at")
        .values_list("video_id", "label")
    ):
        recorded.setdefault(video_id, label)
    bundles = [content_bundle_for(v) for v in videos]
    baseline = get_backend("evidence_baseline")
    before = baseline.decide_batch(bundles, active.spec())
    after = baseline.decide_batch(bundles, draft.spec())

    names = {**active.label_names(), **draft.label_names()}
    old_counts = Counter(r.label for r in before)
    new_counts = Counter(r.label for r in after)
    preview.checked = len(videos)
    preview.flips = [
        ImpactItem(
            video_id=v.pk,
            title=v.title,
            recorded_label=recorded.get(v.pk, ""),
            old_label=b.label,
            new_label=a.label,
            old_name=names.get(b.label, b.label),
            new_name=names.get(a.label, a.label),
        )
        for v, b, a in zip(videos, before, after, strict=True)
        if b.label != a.label
    ]
    preview.label_counts = sorted(
        (
            LabelCount(label, names.get(label, label), old_counts[label], new_counts[label])
            for label in old_counts | new_counts
        ),
        key=lambda row: (-max(row.before, row.after), row.label),
    )
    preview.seconds = time.perf_counter() - started
    return preview


def model_versions_for_choice() -> list[Any]:
    from moderation.inference.models import ModelVersion

    return list(ModelVersion.objects.order_by("-created_at")[:200])


def model_version_get(raw: str) -> Any:
    from moderation.inference.models import ModelVersion

    return ModelVersion.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
