"""The impact preview of a draft policy version: which recent decisions it would flip; inference's because it runs
the evidence baseline under both versions. It decides nothing and changes no decision; what it computed is kept
(``ImpactPreviewRun``) per draft content, active version, model and sample size, so opening the version page or its
publish step again shows it without re-running the model, until the editor asks for a fresh run. A kept run is
shown only while the version it was computed against is the active one (``_kept_run``). Kept runs of a published
draft, of an active version replaced since, or older than ``IMPACT_PREVIEW_RETENTION_DAYS``, are deleted by beat,
daily (``impact_preview_runs_purge``; a deleted draft's go with it)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Max, Q, Value, When
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.backends import get_backend
from moderation.inference.models import Decision, ImpactPreviewRun
from moderation.inference.services import content_bundle_for
from moderation.media.models import Video
from moderation.media.selectors import video_open_to_q
from moderation.policies.models import PolicyVersion
from moderation.policies.selectors import DEFAULT_IMPACT_SAMPLE
from workbench.db import session_lock_try
from workbench.timewords import ago_text

logger = logging.getLogger(__name__)

MAX_IMPACT_SAMPLE = 2000
# "Run again" pressed again this soon after a run, with no item decided under the policy since, shows that run: the
# answer would be the same (the sample is the same items, the model is the same code), for seconds of CPU each time.
IMPACT_RERUN_AFTER = timedelta(seconds=60)
IMPACT_RUNNING = (
    "This impact preview is being computed now (another click, tab or editor started it): it shows here when it is "
    "done; nothing was started twice."
)


class ImpactPreviewRunning(ModerationError):
    """A run of the same draft content against the same active version and model is under way elsewhere."""


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
    gone_flips: int = 0  # flips of videos deleted since the run
    computed_at: datetime | None = None
    reused: bool = False  # a kept run shown again, not computed for this request
    repeat_skipped: bool = False  # "Run again" within IMPACT_RERUN_AFTER, nothing decided since: the kept run shown
    running: bool = False  # nothing kept, and a run is under way (another request's): the page waits for it
    never_run: bool = False  # nothing kept for this content and sample: the page offers to run it
    decided_since: bool = False  # items were decided under the policy after the run: its sample is not the latest

    @property
    def flip_count(self) -> int:
        return len(self.flips) + self.restricted_flips + self.gone_flips

    @property
    def computed_ago(self) -> str:
        """When the run was computed, in words: "just now" under a minute ("0 minutes ago" read as a glitch)."""
        if self.computed_at is None:
            return ""
        return ago_text(self.computed_at)


# The preview runs the evidence baseline, whatever model serves the policy: a flip is then the policy edit's alone.
IMPACT_BACKEND = "evidence_baseline"


@functools.cache
def impact_model_version() -> str:
    """The model a kept preview was computed by: the backend and a digest of its code, so a changed baseline (new
    rules, new weights) makes every kept preview a miss instead of showing what the old code said."""
    from moderation.inference.backends import evidence

    return f"{IMPACT_BACKEND}@{hashlib.sha256(Path(evidence.__file__).read_bytes()).hexdigest()[:12]}"


def impact_content_hash(*, draft: PolicyVersion, active: PolicyVersion) -> str:
    """What the preview's answer depends on in the policy: the draft's taxonomy and settings, and the active
    version's it is compared against (another active version is another preview), under this policy's items."""

    def spec(version: PolicyVersion) -> dict[str, Any]:
        return {"taxonomy": version.taxonomy, "safe_label": version.safe_label, "format": version.output_format}

    text = json.dumps(
        {"policy": draft.policy_id, "draft": spec(draft), "active": spec(active)}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _run_key(draft: PolicyVersion, active: PolicyVersion, sample_size: int) -> dict[str, Any]:
    return {
        "content_hash": impact_content_hash(draft=draft, active=active),
        "model_version": impact_model_version(),
        "sample_size": sample_size,
    }


def _kept_run(key: dict[str, Any], active: PolicyVersion) -> ImpactPreviewRun | None:
    """The run kept under ``key`` (``_run_key``), only if it was computed against ``active`` itself. The content hash alone
    matched a run computed against an earlier active version with the same taxonomy and settings (a rollback, a
    copy published): the page then named the version active now as the one compared, over a run made against
    another version and another sample. Such a run is never shown as current; beat deletes it."""
    return ImpactPreviewRun.objects.filter(**key, active=active).first()


def _sample_size(sample_size: int) -> int:
    return max(1, min(int(sample_size), MAX_IMPACT_SAMPLE))


def policy_impact_preview_kept(
    *, draft: PolicyVersion, user: Any, sample_size: int = DEFAULT_IMPACT_SAMPLE, active: PolicyVersion | None = None
) -> ImpactPreview | None:
    """The kept preview of ``draft`` against the active version, shown to ``user``; None when there is none (or no
    active version). Never runs the model: the publish step draws it in the page, and only loads a run after the
    page when there is nothing kept. ``active``: the policy's active version where the caller has read it already
    (the publish step's page has), else it is read here."""
    sample_size = _sample_size(sample_size)
    if active is None or active.policy_id != draft.policy_id or not active.is_active:
        active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    if active is None:
        return None
    run = _kept_run(_run_key(draft, active, sample_size), active)
    if run is None or not run.result.get("checked"):
        return None
    preview = ImpactPreview(draft=draft, active=active, sample_size=sample_size, reused=True)
    return _shown(preview, run, user)


def policy_impact_preview(
    *, draft: PolicyVersion, user: Any, sample_size: int = DEFAULT_IMPACT_SAMPLE, refresh: bool = False
) -> ImpactPreview:
    """Which decisions would flip if ``draft`` replaced the active version. Decides nothing.

    The run kept for this draft's content, the active version, the model and ``sample_size`` is shown again
    (``reused``) unless ``refresh``; otherwise the model runs and its answer is kept (``ImpactPreviewRun``).
    A ``refresh`` within IMPACT_RERUN_AFTER of the kept run, with no item decided since, shows that run
    (``repeat_skipped``). One run per draft content at a time: while another request runs it,
    ``ImpactPreviewRunning`` (the page then waits for the kept run).

    A flipped video hidden from ``user`` (routed to a restricted queue: ``videos_open_to``) is only
    counted in ``restricted_flips``; its id, title and content are not in the preview. The label counts
    are aggregates and include every sampled video. A kept run holds video ids only: who may see which, and
    the titles, are read when it is shown.

    The sample is the ``sample_size`` videos most recently decided under this policy, whatever its
    version then: right after a publish nothing is decided under the new active version yet, and
    the preview of every other draft said only that. The evidence baseline runs on each under the
    active version and under the draft, so a flip is caused by the policy edit alone and not by a
    difference between the baseline and the serving model (whose latest recorded label is shown
    alongside).
    """
    sample_size = _sample_size(sample_size)
    active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    preview = ImpactPreview(draft=draft, active=active, sample_size=sample_size)
    if active is None:
        return preview
    key = _run_key(draft, active, sample_size)
    kept = _kept_run(key, active)
    run = None if refresh else kept
    if refresh and kept is not None and _repeat_too_soon(kept):
        run, preview.repeat_skipped = kept, True
    if run is not None and not run.result.get("checked"):
        run = None  # kept when nothing was decided yet: cheap to run again, and items may have been decided since
    preview.reused = run is not None
    if run is None:
        with _run_lock(key) as got:
            if not got:
                raise ImpactPreviewRunning(IMPACT_RUNNING)
            run = _run(draft, active, sample_size, key)
    return _shown(preview, run, user)


def _repeat_too_soon(run: ImpactPreviewRun) -> bool:
    """A repeat of ``run`` within IMPACT_RERUN_AFTER with nothing decided under its policy since: same answer."""
    if run.computed_at is None or timezone.now() - run.computed_at >= IMPACT_RERUN_AFTER:
        return False
    return not Decision.objects.filter(
        policy_version__policy_id=run.policy_id, pk__gt=run.latest_decision_id or 0
    ).exists()


def _run_lock_name(key: dict[str, Any]) -> str:
    # Per draft content (against the active version) and model, whatever the sample size: one run of a draft's
    # preview at a time, however many sizes are asked for.
    return f"impact-preview:{key['content_hash']}:{key['model_version']}"


@contextlib.contextmanager
def _run_lock(key: dict[str, Any]) -> Iterator[bool]:
    """A session advisory lock held while this request runs the preview of ``key``'s content: a second click, tab or
    editor meanwhile is told it is running (``ImpactPreviewRunning``) and waits for the kept run, instead of running
    the model on the same items at the same time. Released when the run ends, or with the connection."""
    with session_lock_try(_run_lock_name(key)) as got:
        yield got


def policy_impact_preview_shown(*, draft: PolicyVersion, user: Any, sample_size: int) -> ImpactPreview:
    """What the impact page shows on a plain read: the kept run of ``draft`` (``policy_impact_preview_kept``), else an
    empty preview saying whether a run is under way (``running``) or none was made yet. Never runs the model."""
    sample_size = _sample_size(sample_size)
    active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    if active is None:
        return ImpactPreview(draft=draft, active=active, sample_size=sample_size)
    key = _run_key(draft, active, sample_size)
    preview = policy_impact_preview_kept(draft=draft, user=user, sample_size=sample_size, active=active)
    if preview is None:
        preview = ImpactPreview(draft=draft, active=active, sample_size=sample_size)
        preview.never_run = _kept_run(key, active) is None  # one kept with no item checked reads "none decided yet"
    preview.running = _run_under_way(key)  # a kept run is shown while a new one is computed, saying so
    return preview


def _run_under_way(key: dict[str, Any]) -> bool:
    """Whether a request holds ``_run_lock`` for ``key`` now, read from ``pg_locks`` without taking the lock (a poll
    that took it for an instant would tell a click at that instant that a run is under way, which was not)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = hashtextextended(%s, 0))",
            [_run_lock_name(key)],
        )
        return bool(cur.fetchone()[0])


def _run(draft: PolicyVersion, active: PolicyVersion, sample_size: int, key: dict[str, Any]) -> ImpactPreviewRun:
    """Run the baseline on the sample under both versions and keep the answer under ``key``."""
    started = time.perf_counter()
    latest = Decision.objects.filter(policy_version__policy_id=draft.policy_id).aggregate(m=Max("pk"))["m"]
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
    baseline = get_backend(IMPACT_BACKEND)
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
    flips = [
        {
            "video_id": v.pk,
            "recorded_label": recorded.get(v.pk, ("", 0))[0],
            "recorded_name": recorded_name(v.pk),
            "old_label": b.label,
            "new_label": a.label,
            "old_name": names.get(b.label, b.label),
            "new_name": names.get(a.label, a.label),
        }
        for v, b, a in zip(videos, before, after, strict=True)
        if b.label != a.label
    ]
    counts = sorted(
        (
            LabelCount(label, names.get(label, label), old_counts[label], new_counts[label])
            for label in old_counts | new_counts
        ),
        key=lambda row: (-max(row.before, row.after), row.label),
    )
    kept = {
        "policy_id": draft.policy_id,
        "draft": draft,
        "active": active,
        "result": {"checked": len(videos), "flips": flips, "label_counts": [asdict(c) for c in counts]},
        "latest_decision_id": latest,
        "seconds": time.perf_counter() - started,
        "computed_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            run, _created = ImpactPreviewRun.objects.update_or_create(**key, defaults=kept)
    except IntegrityError:  # the same preview kept by another request meanwhile: this one's answer is as good
        run = ImpactPreviewRun.objects.get(**key)
    return run


def _shown(preview: ImpactPreview, run: ImpactPreviewRun, user: Any) -> ImpactPreview:
    """``run`` as ``user`` may see it: flips of videos hidden from them counted, not named; titles as they are now."""
    flips = run.result.get("flips", [])
    # Which flipped videos still exist and which of them ``user`` may see, in one read of those rows.
    rule = video_open_to_q(user=user)
    is_open = Case(When(rule, then=Value(True)), default=Value(False)) if rule else Value(True)
    rows = (
        Video.objects.filter(pk__in=[f["video_id"] for f in flips])
        .annotate(open_to_user=is_open)
        .order_by()
        .values_list("pk", "title", "open_to_user")
    )
    existing: set[int] = set()
    titles: dict[int, str] = {}
    for pk, title, open_to_user in rows:
        existing.add(pk)
        if open_to_user:
            titles[pk] = title
    preview.flips = [ImpactItem(title=titles[f["video_id"]], **f) for f in flips if f["video_id"] in titles]
    preview.restricted_flips = len([f for f in flips if f["video_id"] in existing and f["video_id"] not in titles])
    preview.gone_flips = len([f for f in flips if f["video_id"] not in existing])
    preview.checked = run.result.get("checked", 0)
    preview.label_counts = [LabelCount(**row) for row in run.result.get("label_counts", [])]
    preview.seconds = run.seconds
    preview.computed_at = run.computed_at
    preview.decided_since = Decision.objects.filter(
        policy_version__policy_id=preview.draft.policy_id, pk__gt=run.latest_decision_id or 0
    ).exists()
    return preview


def impact_preview_runs_purge(*, now: datetime | None = None) -> int:
    """Delete kept impact previews no page shows again: the draft's published (the preview compares a draft), the
    version it was computed against is no longer the active one (``_kept_run`` shows none of those: they waited out
    the retention before), or computed more than ``IMPACT_PREVIEW_RETENTION_DAYS`` ago (a draft left alone, or content
    edited since: each content is its own row). A deleted draft's runs went with it (CASCADE). A draft whose run is
    deleted runs the model again when its page is opened. Idempotent (one DELETE); returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.IMPACT_PREVIEW_RETENTION_DAYS)
    stale = Q(computed_at__lt=cutoff) | ~Q(draft__status=PolicyVersion.Status.DRAFT) | Q(active__is_active=False)
    deleted = ImpactPreviewRun.objects.filter(stale).delete()[0]
    if deleted:
        logger.info(
            "purged %s kept impact previews (published drafts, replaced active versions, or computed before %s)",
            deleted,
            cutoff,
        )
    return deleted
