"""Policy writes: seeding, new draft versions, publishing and activating.

A version is immutable once created: an edit is always a new draft (the next number), never an
update of an existing row's taxonomy. The only fields services ever change on an existing version
are ``status`` (draft -> published), ``is_active`` (which published version is live) and, once, at
publishing, ``publish_note`` (what it replaced when that was not the version it was started from).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from moderation.errors import ModerationError
from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.seed import BLM_GUARD_SAFE_LABEL, SAFE_LABEL, blm_guard_taxonomy, kuaimod_taxonomy
from moderation.policies.selectors import policy_diff, policy_draft_staleness
from moderation.policies.taxonomy import (
    TaxonomyChange,
    TaxonomyProblem,
    taxonomy_errors,
    taxonomy_normalise,
    taxonomy_problems,
)
from moderation.signals import policy_draft_saved, policy_version_activated
from workbench.roles import Perm
from workbench.text import shown_text, storable_text

logger = logging.getLogger(__name__)

BLM_GUARD_SLUG = "blm-guard-ads"


# A publish reason is a sentence or two for the audit log, not a document.
PUBLISH_REASON_MAX_LENGTH = 1000


class StalePublishError(ModerationError):
    """Publishing would replace changes of the active version that the draft was not started from, and the
    editor has not confirmed that (or confirmed it for another active version than the one live now)."""


class PublishNoteMissingError(ModerationError):
    """A draft without a change note cannot be published from the confirm step: the versions table and the
    History would show the new version with nothing beside it, and the diff says what changed, never why."""


class StaleActivationError(ModerationError):
    """Making an earlier version active again would replace another version than the one the editor confirmed
    replacing: another version became active since the confirm step was drawn."""


class PolicyValidationError(ModerationError):
    """A taxonomy that does not validate; ``errors`` lists every problem for the editor to show, ``problems`` the
    taxonomy's with where each is (``taxonomy_problems``), for the structured editor to mark its fields."""

    def __init__(self, errors: list[str], problems: list[TaxonomyProblem] | None = None):
        self.errors = errors
        self.problems = problems or []
        super().__init__(f"The taxonomy has {len(errors)} problem(s): " + " ".join(errors[:3]))


def _require_editor(by: User | AnonymousUser | None) -> None:
    # Views check too; the service refuses on its own so commands and APIs cannot skip the rule.
    if by is None or not by.has_perm(Perm.EDIT_POLICY):  # type: ignore[union-attr]
        raise ModerationError("Only policy editors and admins may change policies.")


def _seed(
    *,
    slug: str,
    name: str,
    safe_label: str,
    output_format: str,
    taxonomy: list[dict[str, Any]],
    notes: str,
    auto_apply: bool = True,
) -> PolicyVersion:
    policy, _ = Policy.objects.get_or_create(slug=slug, defaults={"name": name, "auto_apply": auto_apply})
    active = policy.versions.filter(is_active=True).first()
    if active is not None:
        return active
    errors = taxonomy_errors(taxonomy, safe_label=safe_label, output_format=output_format)
    if errors:
        raise PolicyValidationError(errors)
    return PolicyVersion.objects.create(
        policy=policy,
        number=(policy.versions.count() + 1),
        status=PolicyVersion.Status.PUBLISHED,
        is_active=True,
        safe_label=safe_label,
        output_format=output_format,
        taxonomy=taxonomy,
        notes=notes,
    )


@transaction.atomic
def policy_seed_kuaimod() -> PolicyVersion:
    """Create the KuaiMod policy with a published, active first version (idempotent)."""
    return _seed(
        slug="kuaimod",
        name="KuaiMod taxonomy",
        safe_label=SAFE_LABEL,
        output_format=PolicyVersion.OutputFormat.KUAIMOD,
        taxonomy=kuaimod_taxonomy(),
        notes="Seeded from the KuaiMod benchmark taxonomy.",
    )


@transaction.atomic
def policy_seed_blm_guard() -> PolicyVersion:
    """Create the BLM-Guard advertising policy (scene -> violation type -> severity), idempotent."""
    return _seed(
        slug=BLM_GUARD_SLUG,
        name="BLM-Guard advertising risk",
        safe_label=BLM_GUARD_SAFE_LABEL,
        output_format=PolicyVersion.OutputFormat.BLM,
        taxonomy=blm_guard_taxonomy(),
        notes="Seeded with BLM-Guard's advertising risk scenes, violation types and severities.",
        # Opt-in: it asks for <think>/<answer> output, which the evidence baseline does not write.
        auto_apply=False,
    )


def policy_versions_auto_applied() -> list[PolicyVersion]:
    """The active versions of every policy that new videos are decided under."""
    return list(
        PolicyVersion.objects.filter(is_active=True, policy__auto_apply=True)
        .select_related("policy__serving_model")
        .order_by("policy__slug")
    )


@transaction.atomic
def policy_set_serving_model(*, policy: Policy, model_version: Any, by: User | AnonymousUser | None) -> Policy:
    """Choose the model that decides under ``policy`` (None: the globally serving model)."""
    _require_editor(by)
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    changed = policy.serving_model_id != (model_version.pk if model_version is not None else None)
    policy.serving_model = model_version
    policy.save(update_fields=["serving_model"])
    if changed and model_version is not None:
        from moderation.signals import serving_model_changed

        serving_model_changed.send(sender=Policy, policy=policy, model_version=model_version)
    logger.info("policy %s now served by %s (by %s)", policy.slug, model_version or "the global model", by)
    return policy


def policy_version_active(*, slug: str = "kuaimod") -> PolicyVersion:
    version = PolicyVersion.objects.filter(policy__slug=slug, is_active=True).select_related("policy").first()
    if version is None:
        raise ModerationError(f"Policy '{slug}' has no active version; run `manage.py bootstrap` first.")
    return version


@transaction.atomic
def policy_version_create_draft(
    *,
    policy: Policy,
    taxonomy: Any,
    by: User | AnonymousUser | None,
    notes: str = "",
    safe_label: str | None = None,
    output_format: str | None = None,
    refuse_unchanged: bool = False,
    based_on: PolicyVersion | None = None,
) -> PolicyVersion:
    """Save an edit as a new draft version numbered after the newest one.

    ``based_on`` is the version the editor opened and changed (default: the active version, else the newest);
    the draft records it, so publishing can tell when the active version has moved on since (see
    :func:`policy_version_publish`).

    When the newest version is already a draft with exactly this content (taxonomy, settings and
    notes), that draft is returned instead: a form sent twice makes one draft. With ``refuse_unchanged``
    (the editor's Save), an edit whose taxonomy and settings are those of the active version is refused:
    it would publish as a copy.

    ``safe_label`` and ``output_format`` default to those of ``based_on``.
    Raises :class:`PolicyValidationError` listing every problem when the taxonomy is invalid.
    """
    _require_editor(by)
    # Lock the policy row so two editors saving at once get consecutive numbers, not a clash.
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    if based_on is not None and based_on.policy_id != policy.pk:
        raise ModerationError(
            f"v{based_on.number} is a version of another policy; start the draft from one of this one's."
        )
    base = based_on or policy.versions.filter(is_active=True).first() or policy.versions.order_by("-number").first()
    safe_label = safe_label or (base.safe_label if base else SAFE_LABEL)
    output_format = output_format or (base.output_format if base else PolicyVersion.OutputFormat.KUAIMOD)
    if output_format not in PolicyVersion.OutputFormat.values:
        raise PolicyValidationError([f"Unknown output format {output_format!r}."])
    problems = taxonomy_problems(taxonomy, safe_label=safe_label, output_format=output_format)
    if problems:
        raise PolicyValidationError([p.message for p in problems], problems)
    taxonomy = taxonomy_normalise(taxonomy)
    notes = shown_text(notes).strip()  # read by every editor and on the version's page: no bidi controls
    active = policy.versions.filter(is_active=True).first()
    same = active is not None and (active.taxonomy, active.safe_label, active.output_format) == (
        taxonomy,
        safe_label,
        output_format,
    )
    if refuse_unchanged and active is not None and same:
        # Saved without a change: publishing such a draft would change nothing but the version number.
        raise PolicyValidationError(
            [f"Nothing changed from the active version v{active.number}: no draft saved. Change a tag first."]
        )
    newest = policy.versions.order_by("-number").first()
    if (
        newest is not None
        and newest.status == PolicyVersion.Status.DRAFT
        and (newest.taxonomy, newest.safe_label, newest.output_format, newest.notes, newest.based_on_id)
        == (taxonomy, safe_label, output_format, notes, base.pk if base else None)
    ):
        # The same edit sent twice (a double click, a reload that resends the form): one draft, not two.
        return newest
    number = (newest.number if newest else 0) + 1
    version = PolicyVersion.objects.create(
        policy=policy,
        number=number,
        status=PolicyVersion.Status.DRAFT,
        is_active=False,
        safe_label=safe_label,
        output_format=output_format,
        taxonomy=taxonomy,
        notes=notes,
        based_on=base,
        created_by=by if isinstance(by, User) else None,
    )
    policy_draft_saved.send(
        sender=PolicyVersion, version=version, by=by, payload=policy_draft_audit_payload(draft=version, base=base)
    )
    logger.info("policy %s: draft v%s created by %s", policy.slug, number, getattr(by, "pk", None))
    return version


# The audit log keeps a draft's changes as readable lines, the first of them: a pasted taxonomy can change hundreds.
DRAFT_AUDIT_MAX_CHANGES = 30


def policy_draft_audit_payload(*, draft: PolicyVersion, base: PolicyVersion | None) -> dict[str, Any]:
    """What the audit log keeps of a saved draft: its number, the version it was started from, which of its fields
    differ from that version (``taxonomy``, ``safe_label``, ``output_format``, ``notes``) and the taxonomy's changes,
    one line each (``Keywords added · 违法犯罪 (Criminal behaviour): scam2``), the first ``DRAFT_AUDIT_MAX_CHANGES``
    of ``change_count``."""
    fields = [
        name
        for name in ("taxonomy", "safe_label", "output_format", "notes")
        if base is None or getattr(draft, name) != getattr(base, name)
    ]
    changes = [c for c in policy_diff(base, draft) if c.kind != "setting_changed"] if base is not None else []
    return {
        "policy": draft.policy_id,
        "number": draft.number,
        "started_from": base.number if base is not None else None,
        "fields": fields,
        "change_count": len(changes),
        "changes": [_change_line(c) for c in changes[:DRAFT_AUDIT_MAX_CHANGES]],
    }


def _change_line(change: TaxonomyChange) -> str:
    where = change.tag or change.category
    name = change.tag_name if change.tag else change.category_name
    line = f"{change.label} · {where}" + (f" ({name})" if name and name != where else "")
    if change.before or change.after:
        line += f": {change.before} → {change.after}"
    elif change.items:
        line += ": " + ", ".join(change.items)
    return line


def _make_active(version: PolicyVersion) -> None:
    # Deactivate first: the one-active-version constraint is checked per statement.
    PolicyVersion.objects.filter(policy_id=version.policy_id, is_active=True).exclude(pk=version.pk).update(
        is_active=False
    )
    PolicyVersion.objects.filter(pk=version.pk).update(is_active=True, status=PolicyVersion.Status.PUBLISHED)
    version.refresh_from_db(fields=["is_active", "status"])


@transaction.atomic
def policy_version_publish(
    *,
    version: PolicyVersion,
    by: User | AnonymousUser | None,
    replaces: int | None = None,
    reason: str = "",
    notes: str | None = None,
) -> PolicyVersion:
    """Publish a draft and make it the policy's active version, all in one transaction.

    New decisions and reviews pin the active version from the moment this commits; the versions
    they were made under before stay as they were. Publishing the active version again is a no-op.

    A draft started from a version that is no longer the active one would replace the active version's
    own changes since (:func:`~moderation.policies.selectors.policy_draft_staleness`): that publish is
    refused with :class:`StalePublishError` unless ``replaces`` names the number of the active version
    the editor looked at and agreed to replace. Any publish that passes ``replaces`` (the version page's
    confirm step always does when a version is active) is refused the same way when another version became
    active since. A confirmed publish over a stale base writes what it replaced, who
    confirmed it and ``reason`` into the version's ``publish_note`` and the audit log. This is the one
    publish path (the version page calls it; a command or an API must too), so none skips the question.

    ``notes``: the change note typed on the confirm step (the version page always sends it). A draft saved
    without notes takes it as its notes; when the draft has none and ``notes`` is blank the publish is refused
    with :class:`PublishNoteMissingError` (a policy team reads "what changed and why" beside every published
    version; the diff already lists what, so an automatic summary would say nothing new). ``None`` (seeding,
    scripts) leaves the notes as they are.
    """
    _require_editor(by)
    Policy.objects.select_for_update().get(pk=version.policy_id)
    version = PolicyVersion.objects.select_related("based_on").get(pk=version.pk)
    if version.is_active:
        return version
    if version.status != PolicyVersion.Status.DRAFT:
        raise ModerationError(f"v{version.number} is already published; activate it instead of publishing it again.")
    reason = shown_text(storable_text(reason.strip())).strip()
    if len(reason) > PUBLISH_REASON_MAX_LENGTH:
        raise ModerationError(
            f"The reason is {len(reason):,} characters; keep it to {PUBLISH_REASON_MAX_LENGTH:,} (the version notes "
            "hold the long story)."
        )
    stale = policy_draft_staleness(draft=version)
    previous = PolicyVersion.objects.filter(policy_id=version.policy_id, is_active=True).first()
    if stale is None and replaces is not None and (previous is None or replaces != previous.number):
        # The confirm step named the version it replaces; another publish made a different one active since.
        now = f"v{previous.number} is active now" if previous else "no version is active now"
        raise StalePublishError(
            f"Not published: you confirmed replacing v{replaces}, but {now}. Read what publishing "
            f"v{version.number} replaces now and confirm again."
        )
    if stale is not None:
        active, count = stale.active.number, len(stale.changes)
        started = f"v{stale.started_from.number}" if stale.started_from else "no recorded version"
        since = f" since v{stale.base.number}" if stale.base else ""
        if replaces != active:
            logger.info(
                "policy %s: publishing v%s refused: started from %s, v%s active, confirmed %s",
                version.policy_id,
                version.number,
                started,
                active,
                f"v{replaces}" if replaces is not None else "nothing",
            )
        if replaces is None:
            raise StalePublishError(
                f"Not published: v{version.number} was started from {started}, and v{active} is active now. "
                f"Publishing replaces v{active}'s {count} change{'s' if count != 1 else ''}{since}. "
                f"Read them on v{version.number}'s page and confirm there to publish anyway, or start a new draft "
                f"from v{active}."
            )
        if replaces != active:
            raise StalePublishError(
                f"Not published: you confirmed replacing v{replaces}, but v{active} is active now. "
                f"Read what v{active} changed and confirm again."
            )
        version.publish_note = (
            f"Published over v{active}, which it was not started from (started from {started}): "
            f"v{active}'s {count} change{'s' if count != 1 else ''}{since} "
            f"{'were' if count != 1 else 'was'} replaced. "
            f"Confirmed by {by.get_username()}." + (f" Reason: {reason}" if reason else "")  # type: ignore[union-attr]
        )
        PolicyVersion.objects.filter(pk=version.pk).update(publish_note=version.publish_note)
    note_added = False
    if notes is not None and not version.notes:
        notes = shown_text(storable_text(notes)).strip()
        if not notes:
            raise PublishNoteMissingError(
                f"Not published: v{version.number} has no change note. Write what changed and why in "
                '"Change note"; it is shown beside the version in the versions table and in the History.'
            )
        version.notes, note_added = notes, True
        PolicyVersion.objects.filter(pk=version.pk).update(notes=notes)
    _make_active(version)
    payload: dict[str, Any] = {
        "policy": version.policy_id,
        "number": version.number,
        "replaced": previous.number if previous else None,
        "started_from": version.based_on.number if version.based_on else None,
        "replaced_changes_confirmed": stale is not None,
    }
    if note_added:
        payload["notes"] = version.notes
    if stale is not None:
        payload |= {"replaced_changes": len(stale.changes), "reason": reason}
    policy_version_activated.send(
        sender=PolicyVersion, version=version, by=by, action="policy.publish", payload=payload
    )
    logger.info(
        "policy %s: v%s published by %s%s",
        version.policy_id,
        version.number,
        getattr(by, "pk", None),
        f" over v{stale.active.number} (confirmed)" if stale else "",
    )
    return version


@transaction.atomic
def policy_version_activate(
    *, version: PolicyVersion, by: User | AnonymousUser | None, replaces: int | None = None
) -> PolicyVersion:
    """Make an already published version the active one again (a rollback); drafts must be published.

    ``replaces``: the number of the active version the editor's confirm step named (the version page's step
    always sends it when a version is active). When another version became active since, nothing changes and
    :class:`StaleActivationError` says which one is active now, as a publish is refused (``policy_version_publish``):
    the editor agreed to roll back v3, not v4 published a minute ago. Already active: nothing to do."""
    _require_editor(by)
    Policy.objects.select_for_update().get(pk=version.policy_id)
    version = PolicyVersion.objects.get(pk=version.pk)
    if version.status != PolicyVersion.Status.PUBLISHED:
        raise ModerationError(f"v{version.number} is a draft; publish it to make it active.")
    if not version.is_active:
        previous = PolicyVersion.objects.filter(policy_id=version.policy_id, is_active=True).first()
        if replaces is not None and (previous is None or previous.number != replaces):
            now = f"v{previous.number} is active now" if previous else "no version is active now"
            raise StaleActivationError(
                f"Not made active: you confirmed replacing v{replaces}, but {now}. Read what making "
                f"v{version.number} active replaces now and confirm again."
            )
        _make_active(version)
        policy_version_activated.send(
            sender=PolicyVersion,
            version=version,
            by=by,
            action="policy.activate",
            payload={
                "policy": version.policy_id,
                "number": version.number,
                "replaced": previous.number if previous else None,
            },
        )
        logger.info("policy %s: v%s re-activated by %s", version.policy_id, version.number, getattr(by, "pk", None))
    return version
