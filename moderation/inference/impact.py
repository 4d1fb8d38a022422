"""The impact preview of a draft policy version: which recent decisions it would flip. A read (writes
nothing); inference's because it runs the evidence baseline under both versions."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Max

from moderation.inference.backends import get_backend
from moderation.inference.models import Decision
from moderation.inference.services import content_bundle_for
from moderation.media.models import Video
from moderation.media.selectors import videos_open_to
from moderation.policies.models import PolicyVersion
from moderation.policies.selectors import DEFAULT_IMPACT_SAMPLE

MAX_IMPACT_SAMPLE = 2000


@dataclass
class ImpactItem:
    video_id: int
    title: str
    recorded_label: str  # what the model that decided the item actually said
    old_label: str  # the baseline under the active version
    new_label: str  # the baseline under the draft
    old_name: str = ""
    new_name: str = ""
    recorded_name: str = ""  # the recorded label's English name in the version it was decided under


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
    flips: list[ImpactItem] = field(default_factory=list)  # only videos the viewer may see
    restricted_flips: int = 0  # flips of videos hidden from the viewer: counted, never named
    label_counts: list[LabelCount] = field(default_factory=list)  # most common first
    seconds: float = 0.0

    @property
    def flip_count(self) -> int:
        return len(self.flips) + self.restricted_flips


def policy_impact_preview(
    *, draft: PolicyVersion, user: Any, sample_size: int = DEFAULT_IMPACT_SAMPLE
) -> ImpactPreview:
    """Which decisions would flip if ``draft`` replaced the active version. Writes nothing.

    A flipped video hidden from ``user`` (routed to a restricted queue: ``videos_open_to``) is only
    counted in ``restricted_flips``; its id, title and content are not in the preview. The label counts
    are aggregates and include every sampled video.

    The sample is the ``sample_size`` videos most recently decided under this policy, whatever its
    version then: right after a publish nothing is decided under the new active version yet, and
    the preview of every other draft said only that. The evidence baseline runs on each under the
    active version and under the draft, so a flip is caused by the policy edit alone and not by a
    difference between the baseline and the serving model (whose latest recorded label is shown
    alongside).
    """
    started = time.perf_counter()
    sample_size = max(1, min(int(sample_size), MAX_IMPACT_SAMPLE))
    active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    preview = ImpactPreview(draft=draft, active=active, sample_size=sample_size)
    if active is None:
        return preview
    videos = list(
        Video.objects.filter(decisions__policy_version__policy_id=draft.policy_id)
        .annotate(last_decided=Max("decisions__created_at"))
        .order_by("-last_decided", "-pk")
        .prefetch_related("segments", "keyframes")[:sample_size]
    )
    recorded: dict[int, tuple[str, int]] = {}  # video -> (label, the version it was decided under)
    for video_id, label, version_id in (
        Decision.objects.filter(policy_version__policy_id=draft.policy_id, video__in=[v.pk for v in videos])
        .order_by("video_id", "-created_at")
        .values_list("video_id", "label", "policy_version_id")
    ):
        recorded.setdefault(video_id, (label, version_id))
    bundles = [content_bundle_for(v) for v in videos]
    baseline = get_backend("evidence_baseline")
    before = baseline.decide_batch(bundles, active.spec())
    after = baseline.decide_batch(bundles, draft.spec())

    names = {**active.label_names(), **draft.label_names()}
    # A recorded label is named as the version that decided it named it (a tag renamed or dropped since keeps
    # the name the decision was made with), else as the active version or the draft names it.
    decided_under = PolicyVersion.objects.in_bulk({version_id for _label, version_id in recorded.values()})
    names_by_version = {pk: version.label_names() for pk, version in decided_under.items()}

    def recorded_name(video_id: int) -> str:
        label, version_id = recorded.get(video_id, ("", 0))
        return (names_by_version.get(version_id, {}).get(label) or names.get(label, "")) if label else ""

    old_counts = Counter(r.label for r in before)
    new_counts = Counter(r.label for r in after)
    preview.checked = len(videos)
    flips = [
        ImpactItem(
            video_id=v.pk,
            title=v.title,
            recorded_label=recorded.get(v.pk, ("", 0))[0],
            recorded_name=recorded_name(v.pk),
            old_label=b.label,
            new_label=a.label,
            old_name=names.get(b.label, b.label),
            new_name=names.get(a.label, a.label),
        )
        for v, b, a in zip(videos, before, after, strict=True)
        if b.label != a.label
    ]
    flipped = Video.objects.filter(pk__in=[f.video_id for f in flips])
    open_ids = set(videos_open_to(user=user, qs=flipped).values_list("pk", flat=True))
    preview.flips = [f for f in flips if f.video_id in open_ids]
    preview.restricted_flips = len(flips) - len(preview.flips)
    preview.label_counts = sorted(
        (
            LabelCount(label, names.get(label, label), old_counts[label], new_counts[label])
            for label in old_counts | new_counts
        ),
        key=lambda row: (-max(row.before, row.after), row.label),
    )
    preview.seconds = time.perf_counter() - started
    return preview
