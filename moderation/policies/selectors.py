"""Policy reads: list and detail pages, label choices for review forms, version diffs. (The impact
preview of a draft runs the evidence baseline, so it is inference's: moderation/inference/impact.py.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.taxonomy import TaxonomyChange, taxonomy_diff

DEFAULT_IMPACT_SAMPLE = 200


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
    versions = list(policy.versions.select_related("based_on").order_by("-number"))
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


def policy_label_search_text(*, version: PolicyVersion) -> dict[str, str]:
    """Per label key of ``version``, the lower-cased text a label filter matches: the key, the English
    name, the tag's keywords (Chinese and English, e.g. "gambling" for 违法犯罪) and its category's key and
    name, so a reviewer finds a label by any word the policy gives it, not only its key."""
    texts = {version.safe_label: f"{version.safe_label} non-violative not a violation"}
    for major in version.taxonomy:
        category = [major.get("key", ""), major.get("name", "")]
        for tag in major.get("tags", []):
            words = [tag["key"], tag.get("name", ""), *tag.get("keywords", []), *category]
            texts[tag["key"]] = " ".join(w.strip() for w in words if isinstance(w, str) and w.strip()).lower()
    return texts


def policy_version_active(*, policy_id: int) -> PolicyVersion | None:
    """The version new decisions and reviews use now (None before any is published)."""
    return PolicyVersion.objects.filter(policy_id=policy_id, is_active=True).first()


def policy_version_get(*, version_id: int) -> PolicyVersion:
    return get_object_or_404(PolicyVersion.objects.select_related("policy", "created_by", "based_on"), pk=version_id)


def policy_diff(a: PolicyVersion, b: PolicyVersion) -> list[TaxonomyChange]:
    """Everything that changed from version ``a`` to version ``b``: settings first, then the taxonomy."""
    changes = [
        TaxonomyChange("setting_changed", category=label, before=str(getattr(a, attr)), after=str(getattr(b, attr)))
        for attr, label in (("safe_label", "Non-violative label"), ("output_format", "Output format"))
        if getattr(a, attr) != getattr(b, attr)
    ]
    return changes + taxonomy_diff(a.taxonomy, b.taxonomy)


# The diff's kinds that change a tag kept under its key (a changed key is a removal plus an addition).
_TAG_EDIT_KINDS = frozenset(
    {
        "tag_moved",
        "tag_renamed",
        "keywords_added",
        "keywords_removed",
        "criteria_added",
        "criteria_removed",
        "severities_changed",
    }
)


@dataclass(frozen=True)
class ChangesFromBase:
    """What a version changed since the version it was started from (``policy_diff(base, version)``, the diff
    page's rule), read per row of the taxonomy table: which tags and categories are new or changed, and which
    went (they have no row to mark, so ``summary`` names them)."""

    base: PolicyVersion
    changes: list[TaxonomyChange]

    def _keys(self, kinds: frozenset[str] | set[str], attr: str) -> list[str]:
        keys: list[str] = []
        for c in self.changes:
            key = getattr(c, attr)
            if c.kind in kinds and key not in keys:
                keys.append(key)
        return keys

    @property
    def tag_marks(self) -> dict[str, str]:
        """Tag key -> "new" or "changed"."""
        marks = {key: "changed" for key in self._keys(_TAG_EDIT_KINDS, "tag")}
        return marks | {key: "new" for key in self._keys({"tag_added"}, "tag")}

    @property
    def category_marks(self) -> dict[str, str]:
        """Category key -> "new" or "renamed"."""
        marks = {key: "renamed" for key in self._keys({"category_renamed"}, "category")}
        return marks | {key: "new" for key in self._keys({"category_added"}, "category")}

    @property
    def summary(self) -> str:
        """One line, e.g. "2 tags added, 1 changed, 1 removed (gambling) since v1": the removed ones named, as
        they have no row in the table to mark."""
        tag_marks, category_marks = self.tag_marks, self.category_marks
        removed_tags = self._keys({"tag_removed"}, "tag")
        removed_categories = self._keys({"category_removed"}, "category")
        parts: list[str] = []
        for noun, nouns, counts in (
            (
                "tag",
                "tags",
                [
                    (sum(m == "new" for m in tag_marks.values()), "added"),
                    (sum(m == "changed" for m in tag_marks.values()), "changed"),
                    (len(removed_tags), f"removed ({', '.join(removed_tags)})"),
                ],
            ),
            (
                "category",
                "categories",
                [
                    (sum(m == "new" for m in category_marks.values()), "added"),
                    (sum(m == "renamed" for m in category_marks.values()), "renamed"),
                    (len(removed_categories), f"removed ({', '.join(removed_categories)})"),
                ],
            ),
        ):
            said = [(n, what) for n, what in counts if n]
            for i, (n, what) in enumerate(said):
                # The noun once per group: "2 tags added, 1 changed".
                parts.append(f"{n} {(noun if n == 1 else nouns) + ' ' if i == 0 else ''}{what}")
        settings = [c.category.lower() for c in self.changes if c.kind == "setting_changed"]
        if settings:
            parts.append(f"{' and '.join(settings)} changed")
        if not parts:
            return f"No changes since v{self.base.number}"
        return f"{', '.join(parts)} since v{self.base.number}"


def policy_version_changes_from_base(*, version: PolicyVersion) -> ChangesFromBase | None:
    """``version``'s changes since its ``based_on`` version, drafts and published alike; None without one."""
    base = version.based_on
    if base is None:
        return None
    return ChangesFromBase(base=base, changes=policy_diff(base, version))


def policy_taxonomy_rows_marked(*, version: PolicyVersion, since: ChangesFromBase | None) -> list[dict[str, Any]]:
    """``policy_taxonomy_rows`` with each row's ``change`` ("new", "changed" or "") and ``major_change`` ("new",
    "renamed" or "") since ``since.base``; unmarked when ``since`` is None."""
    rows = policy_taxonomy_rows(version=version)
    tags = since.tag_marks if since else {}
    categories = since.category_marks if since else {}
    for row in rows:
        row["change"] = tags.get(row["key"], "")
        row["major_change"] = categories.get(row["major_key"], "")
    return rows


@dataclass(frozen=True)
class StaleDraft:
    """A draft whose starting point is no longer the active version: publishing it replaces ``active``
    and with it every change ``active`` made since ``base`` (``changes``, in the order of the diff page)."""

    draft: PolicyVersion
    started_from: PolicyVersion | None  # the version the editor opened (it may itself be a draft)
    base: PolicyVersion | None  # the published version the draft's content descends from; None: unknown
    active: PolicyVersion
    changes: list[TaxonomyChange]

    @property
    def diff_from(self) -> PolicyVersion:
        """The "before" side of ``changes``: the base, or the draft itself when its base is unknown."""
        return self.base or self.draft


def policy_version_published_base(*, version: PolicyVersion) -> PolicyVersion | None:
    """The published version ``version``'s content descends from: the version it was started from, or,
    when that is a draft, the one that draft was started from, and so on (a draft of a draft carries its
    parent's edits, so it is as up to date as the parent). None when the chain ends without one."""
    # Read from the database at each step, not from related objects cached on instances that may predate a publish.
    seen = {version.pk}
    next_id = version.based_on_id
    while next_id is not None and next_id not in seen:
        current = PolicyVersion.objects.filter(pk=next_id).first()
        if current is None or current.status == PolicyVersion.Status.PUBLISHED:
            return current
        seen.add(current.pk)
        next_id = current.based_on_id
    return None


def policy_start_behind_active(*, start: PolicyVersion | None) -> PolicyVersion | None:
    """The active version, when a draft started from ``start`` would not contain it (``start`` is an older
    published version, or a draft of one); None when ``start`` is the active version or descends from it."""
    if start is None:
        return None
    active = PolicyVersion.objects.filter(policy_id=start.policy_id, is_active=True).first()
    if active is None or start.pk == active.pk:
        return None
    root = start if start.status == PolicyVersion.Status.PUBLISHED else policy_version_published_base(version=start)
    return None if root is not None and root.pk == active.pk else active


def policy_draft_staleness(*, draft: PolicyVersion, active: PolicyVersion | None = None) -> StaleDraft | None:
    """What publishing ``draft`` would silently undo, or None when nothing: it is not a draft, no
    version is active, the draft descends from the active version, or the active version has the same
    taxonomy and settings as the draft's base (it changed nothing a publish could lose). ``active``: the
    policy's active version where the caller has read it already (a version's page has), else read here."""
    if draft.status != PolicyVersion.Status.DRAFT:
        return None
    if active is None or active.policy_id != draft.policy_id or not active.is_active:
        active = PolicyVersion.objects.filter(policy_id=draft.policy_id, is_active=True).first()
    if active is None:
        return None
    base = policy_version_published_base(version=draft)
    if base is not None and base.pk == active.pk:
        return None
    changes = policy_diff(base or draft, active)
    if not changes:
        return None
    return StaleDraft(draft=draft, started_from=draft.based_on, base=base, active=active, changes=changes)


def policy_stale_draft_ids(*, versions: list[PolicyVersion]) -> set[int]:
    """Which of ``versions`` are drafts whose publish would replace the active version's changes."""
    return {v.pk for v in versions if v.status == PolicyVersion.Status.DRAFT and policy_draft_staleness(draft=v)}
