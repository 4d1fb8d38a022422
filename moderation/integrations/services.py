"""Integration writes: tokens, idempotent video submission, and the outbox events every state
change that a platform cares about records in its own transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.integrations.models import EventType, IdempotencyKey, Integration, IntegrationVideo, OutboxEvent
from moderation.integrations.selectors import import_folders_all_open_to, integration_video_by_external_id
from moderation.integrations.webhooks import webhook_deliveries_resume
from moderation.media.models import Video
from moderation.signals import integration_changed, user_import_refused
from workbench.queues import enqueue
from workbench.text import plain_name, row_id, shown_text
from workbench.tokens import token_hash  # one way for every token: integrations' and users' API tokens

if TYPE_CHECKING:
    from django.contrib.auth.models import User


logger = logging.getLogger(__name__)

TOKEN_PREFIX_LEN = 8
IDEMPOTENCY_KEY_MAX = 200
DISPATCH_TASK = "moderation.integrations.tasks.dispatch_outbox_event"


# --- tokens ---------------------------------------------------------------------------------------


def _check_rate(rate: str) -> str:
    rate = (rate or "").strip()
    if not rate:
        return ""
    num, _, period = rate.partition("/")
    count = row_id(num)
    max_length = Integration._meta.get_field("rate_limit").max_length or 20
    if count is not None and count >= 1 and not period:  # "120", as "600 requests a minute" reads
        raise ModerationError(f"Rate limit {rate!r} needs a period: {count}/min or {count}/hour.")
    if count is None or count < 1 or not period or period[0] not in "smhd" or len(rate) > max_length:
        raise ModerationError(f"Rate limit {rate!r} is not like 120/min or 5000/hour.")
    return rate


@transaction.atomic
@transaction.atomic
def integration_create(*, name: str, rate_limit: str = "", by: User | None = None) -> tuple[Integration, str]:
    """Create an integration and return it with its token: the only time the token is readable.
    Recorded in the audit log, as a rotation is (a new credential was issued, by ``by``).

    Two creates of one name at once (Add pressed twice, two admins' tabs) go one after the other: the second waits
    for the first's commit, then finds its name taken and says so. Both had passed the name check before either
    inserted, and the second ended in the unique name's IntegrityError, a 500 page that hid the token the first had
    made and that no one had seen."""
    name = plain_name((name or "").strip()).strip()
    if not name:
        raise ModerationError("An integration needs a name.")
    max_length = Integration._meta.get_field("name").max_length or 200
    if len(name) > max_length:
        raise ModerationError(f"An integration's name has at most {max_length} characters; this one has {len(name):,}.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"integration-name:{name}"])
    if Integration.objects.filter(name=name).exists():
        raise ModerationError(f"An integration named “{name}” already exists.")
    token, fields = _new_token()
    integration = Integration.objects.create(name=name, rate_limit=_check_rate(rate_limit), **fields)
    integration_changed.send(
        sender=Integration,
        integration=integration,
        action="integration.create",
        by=by,
        payload={
            "token_prefix": integration.token_prefix,
            "token_expires_at": integration.token_expires_at.isoformat(),
            "rate_limit": integration.rate_limit,
        },
    )
    return integration, token


def _new_token() -> tuple[str, dict[str, Any]]:
    """A new token and the fields that store it (its hash, its prefix, when it expires)."""
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(days=settings.INTEGRATION_TOKEN_LIFETIME_DAYS)
    return token, {
        "token_hash": token_hash(token),
        "token_prefix": token[:TOKEN_PREFIX_LEN],
        "token_expires_at": timezone.now() + lifetime,
    }


@transaction.atomic
def integration_token_rotate(*, integration: Integration, by: User | None) -> tuple[Integration, str]:
    """Give ``integration`` a new token (returned: the only time it is readable) with a new expiry; the old token is
    refused from now on. Recorded in the audit log."""
    locked = Integration.objects.select_for_update().get(pk=integration.pk)
    old_prefix = locked.token_prefix
    token, fields = _new_token()
    for field, value in fields.items():
        setattr(locked, field, value)
    locked.save(update_fields=list(fields))
    integration_changed.send(
        sender=Integration,
        integration=locked,
        action="integration.token_rotate",
        by=by,
        payload={"old_token_prefix": old_prefix, "token_expires_at": locked.token_expires_at.isoformat()},
    )
    return locked, token


@transaction.atomic
def integration_switch(*, integration: Integration, active: bool, by: User | None) -> Integration:
    """Switch ``integration`` on or off. Off: its token is refused (a 401 saying it is switched off) and no webhook
    is sent to it (events meanwhile are never sent to it; deliveries queued before are held, and go out at once when it
    is switched on again, to those of its endpoints that are enabled). Recorded in the audit log; switching to the state it is in already changes and records nothing (a form
    posted twice)."""
    locked = Integration.objects.select_for_update().get(pk=integration.pk)
    if locked.is_active != active:
        locked.is_active = active
        locked.save(update_fields=["is_active"])
        action = "integration.switch_on" if active else "integration.switch_off"
        integration_changed.send(sender=Integration, integration=locked, action=action, by=by, payload={})
        if active:
            webhook_deliveries_resume(endpoint_ids=list(locked.webhook_endpoints.values_list("pk", flat=True)))
    return locked


class IntegrationRefused(ModerationError):
    """A token that authenticates no integration now: unknown, switched off or expired (answered 401)."""

    def __init__(self, message: str, *, code: str = "invalid_token") -> None:
        super().__init__(message)
        self.code = code  # invalid_token, integration_switched_off, token_expired


def integration_token_valid(token: str) -> bool:
    """Whether ``token`` is the token of an integration switched on, not expired (one indexed lookup of its hash; marks
    nothing used): the check a large upload passes before its body is read."""
    return Integration.objects.filter(
        token_hash=token_hash(token), is_active=True, token_expires_at__gt=timezone.now()
    ).exists()


def integration_valid_for(*, token: str) -> Integration | None:
    """The integration switched on, not expired, whose token ``token`` is (as ``integration_token_valid``), else None."""
    return Integration.objects.filter(
        token_hash=token_hash(token), is_active=True, token_expires_at__gt=timezone.now()
    ).first()


def integration_authenticate(*, token: str) -> Integration:
    """The integration holding ``token``, marked used (at most one write a minute); ``IntegrationRefused`` saying
    why when the token is unknown, its integration is switched off, or it expired."""
    integration = Integration.objects.filter(token_hash=token_hash(token)).first()
    if integration is None:
        raise IntegrationRefused("Invalid integration token.")
    if not integration.is_active:
        raise IntegrationRefused(
            f"The integration “{integration.name}” is switched off: its token is refused and it is sent no webhooks "
            "until an administrator of the workbench switches it on (on its Integrations page).",
            code="integration_switched_off",
        )
    now = timezone.now()
    if integration.token_expires_at <= now:
        expired_on = f"{integration.token_expires_at.astimezone(UTC):%Y-%m-%d %H:%M}"
        raise IntegrationRefused(
            f"This integration token expired on {expired_on} UTC. An administrator of the workbench gives "
            f"“{integration.name}” a new one (Rotate token on its Integrations page, or manage.py rotate_integration_token).",
            code="token_expired",
        )
    if integration.last_used_at is None or now - integration.last_used_at > timedelta(minutes=1):
        Integration.objects.filter(pk=integration.pk).update(last_used_at=now)
        integration.last_used_at = now
    return integration


# --- submit ---------------------------------------------------------------------------------------


@dataclass
class Submission:
    video: Video
    replayed: bool  # True: an earlier request with the same Idempotency-Key made it
    status: int
    # The platform had sent these bytes before (answered 200): its video, as it knows it, and a sentence
    # that says so and which of this request's fields were not recorded.
    copy_of: IntegrationVideo | None = None
    copy_notice: str = ""


def _copy_notice(*, link: IntegrationVideo, fields: dict[str, Any]) -> str:
    """What a platform is told when it sends bytes it sent before: one video, not stored or processed again,
    and the fields of this request that differ from what it sent first were not recorded (the video, which
    reviews and decisions are about, keeps its first title, description, uploader, comments and external id;
    an external id is recorded only where the first request gave none)."""
    video = link.video
    shown = f"external id {link.external_id!r}" if link.external_id else "no external id"
    notice = (
        f"This file is a copy of your video #{video.pk} ({shown}), sent before: it was not stored or processed again."
    )
    dropped = [
        name
        for name in ("title", "description", "uploader")
        if fields[name].strip() and fields[name].strip()[:500] != getattr(video, name)
    ]
    if fields["comments"] and list(fields["comments"]) != list(video.comments):
        dropped.append("comments")
    if fields["external_id"] and link.external_id and fields["external_id"] != link.external_id:
        dropped.append(f"external id {fields['external_id']!r}")
    if not dropped:
        return notice
    listed = ", ".join(dropped[:-1]) + (" and " if len(dropped) > 1 else "") + dropped[-1]
    were = "were" if len(dropped) > 1 else "was"
    return f"{notice} This request's {listed} {were} not recorded; the video keeps what you sent first."


def _fingerprint(fields: dict[str, Any], upload: Any) -> str:
    described = dict(fields)
    if upload is not None:
        described["upload"] = [getattr(upload, "name", ""), getattr(upload, "size", None)]
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def video_submit(
    *,
    integration: Integration | None = None,
    user: User | None = None,
    idempotency_key: str = "",
    upload: Any = None,
    path: str = "",
    title: str = "",
    description: str = "",
    uploader: str = "",
    external_id: str | None = None,
    comments: list[str] | None = None,
) -> Submission:
    """Ingest a video for a platform (``integration``) or a signed-in ``user``: an uploaded file or a
    server ``path`` confined to MEDIA_IMPORT_ROOTS (a platform's to its own folder in them,
    ``Integration.import_folder``: a path outside it is refused and recorded in the audit log).

    With an ``idempotency_key`` a retried request returns the first result and never makes a second
    video, also when both arrive at once: a transaction-scoped advisory lock on (owner, key) lets the
    second wait for the first and then read its row (the unique constraint is the backstop). The key
    reused for a different request is refused.
    """
    from moderation.media.ingest import ImportPathChanged, ImportPathRefused

    try:
        return _video_submit(
            integration=integration,
            user=user,
            idempotency_key=idempotency_key,
            upload=upload,
            path=path,
            title=title,
            description=description,
            uploader=uploader,
            external_id=external_id,
            comments=comments,
        )
    except (ImportPathRefused, ImportPathChanged) as exc:  # outside its folder, or a symlink swapped in on the way
        if user is not None:  # after the rollback: who tried to read which file
            logger.warning("user %s refused a server path: %r", user.pk, path)
            user_import_refused.send(sender=Integration, user=user, path=shown_text(path)[:1000], reason=str(exc)[:500])
        if integration is not None:
            logger.warning("integration %s refused a path outside its import folder: %r", integration.pk, path)
            integration_changed.send(
                sender=Integration,
                integration=integration,
                action="integration.import_refused",
                by=None,
                payload={"path": shown_text(path)[:1000], "import_folder": integration.import_folder},
            )
        raise


def _video_submit(
    *,
    integration: Integration | None,
    user: User | None,
    idempotency_key: str,
    upload: Any,
    path: str,
    title: str,
    description: str,
    uploader: str,
    external_id: str | None,
    comments: list[str] | None,
) -> Submission:
    from moderation.media.ingest import import_path_confined, video_ingest

    if (integration is None) == (user is None):
        raise ModerationError("A submission is made by an integration or by a user.")
    if (upload is None) == (not path):
        raise ModerationError("Send exactly one video: a multipart 'file' or a server 'path'.")
    key = (idempotency_key or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ModerationError(f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters.")
    fields = {
        "path": path,
        "title": title,
        "description": description,
        "uploader": uploader,
        "external_id": external_id,
        "comments": comments or [],
    }
    fingerprint = _fingerprint(fields, upload)
    owner = {"integration": integration} if integration is not None else {"user": user}
    owner_tag = f"i{integration.pk}" if integration is not None else f"u{user.pk}"  # type: ignore[union-attr]

    with transaction.atomic():
        if key:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"idem:{owner_tag}:{key}"])
            first = IdempotencyKey.objects.filter(key=key, **owner).select_related("video").first()
            if first is not None:
                if first.fingerprint != fingerprint:
                    raise IdempotencyConflict(
                        "This Idempotency-Key was used for a different request; use a new key for a new video."
                    )
                replayed = Submission(video=first.video, replayed=True, status=first.response_status)
                if integration is not None and first.response_status == 200:
                    link = IntegrationVideo.objects.select_related("video").get(
                        integration=integration, video=first.video
                    )
                    replayed.copy_of, replayed.copy_notice = link, _copy_notice(link=link, fields=fields)
                return replayed
        named: int | None = None  # the video this integration's external id names already
        if integration is not None and external_id:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"ext:{owner_tag}:{external_id}"])
            named = integration_video_by_external_id(integration=integration, external_ids={external_id}).get(
                external_id
            )
        taken = f"External id {external_id!r} already names another of your videos." if named is not None else ""
        folder = integration.import_folder if integration is not None else ""
        # A user who does not manage integrations is kept out of every integration's folder (a platform's files).
        closed = user is not None and not import_folders_all_open_to(user=user)
        source = import_path_confined(path, folder=folder, integration_folders_closed=closed) if path else None
        if source is not None and not source.is_file():
            raise ModerationError(f"Not a file: {path}")
        video = video_ingest(
            upload=upload,
            path=source,
            title=title or (source.stem if source else ""),
            description=description,
            uploader=uploader[:200],
            # A platform's external id is its own (on its link below), not the workbench's shared namespace.
            external_id=(external_id or None) if integration is None else None,
            comments=comments,
            created_by=user,
            refuse_new=taken,
            confined=True,  # a folder on its way swapped for a symlink since the check is not followed
        )
        if named is not None and named != video.pk:
            raise ModerationError(taken)
        submitted = Submission(video=video, replayed=False, status=201)
        if integration is not None:
            link, created = IntegrationVideo.objects.get_or_create(
                integration=integration, video=video, defaults={"external_id": external_id or None}
            )
            if not created:  # this platform sent these bytes before: nothing new was made
                notice = _copy_notice(link=link, fields=fields)
                if external_id and link.external_id is None:
                    link.external_id = external_id
                    link.save(update_fields=["external_id"])
                submitted = Submission(video=video, replayed=False, status=200, copy_of=link, copy_notice=notice)
        if key:
            IdempotencyKey.objects.create(
                key=key, fingerprint=fingerprint, video=video, response_status=submitted.status, **owner
            )
    return submitted


class IdempotencyConflict(ModerationError):
    """The key was first used with another request body (answered 422)."""


# --- outbox ---------------------------------------------------------------------------------------


def event_record(*, type: str, data: dict[str, Any], video_id: int | None = None) -> OutboxEvent:
    """Write one event into the outbox. Call it inside the transaction of the change it describes:
    the event commits with the change or not at all. Fan-out to webhook endpoints is queued after
    commit; if that message is lost, the periodic sweep dispatches the event anyway.

    Upper layers (annotation, training, tagging) call this (or one of the ``event_*`` helpers below)
    from their own services; ``tags.final`` is for the tagging wing's finalise service.
    """
    if type not in EventType.values:
        raise ModerationError(f"Unknown event type {type!r}.")
    event = OutboxEvent.objects.create(type=type, video_id=video_id, payload=data)
    # robust: with the broker down the event still commits; the sweep dispatches it later.
    enqueue(DISPATCH_TASK, str(event.pk), robust=True)
    return event


def _video_ref(video_id: int, video: Video | None = None) -> dict[str, Any]:
    """The video's ids for a payload; pass ``video`` when it is loaded already (no query)."""
    if video is not None and video.pk == video_id:
        return {"video_id": video_id, "external_id": video.external_id}
    external_id = Video.objects.filter(pk=video_id).values_list("external_id", flat=True).first()
    return {"video_id": video_id, "external_id": external_id}


def _loaded_video(obj: Any) -> Video | None:
    """``obj.video`` if it is loaded already (select_related), else None."""
    return obj._state.fields_cache.get("video") if obj is not None else None


# Decisions, reviews, labels and model versions arrive as Any: this wing sits below inference and
# review in the wing order (pyproject.toml), and they call it.
def event_decision_created(*, decision: Any) -> OutboxEvent:
    return event_record(
        type=EventType.DECISION_CREATED,
        video_id=decision.video_id,
        data={
            **_video_ref(decision.video_id, _loaded_video(decision)),
            "decision_id": decision.pk,
            "label": decision.label,
            "is_violation": decision.is_violation,
            "confidence": decision.confidence,
            "severity": decision.severity,
            "policy_version": str(decision.policy_version),
            "model_version": str(decision.model_version),
            "cascade_stage": decision.cascade_stage,
            "parse_error": bool(decision.parse_error),
        },
    )


def event_review_completed(*, review: Any, queue_slug: str) -> OutboxEvent:
    decision = review.decision
    return event_record(
        type=EventType.REVIEW_COMPLETED,
        video_id=decision.video_id,
        data={
            **_video_ref(decision.video_id, _loaded_video(decision)),
            "review_id": review.pk,
            "decision_id": decision.pk,
            "queue": queue_slug,
            "verdict": review.verdict,
            "label": review.label,
            "severity": review.severity,
            "model_label": decision.label,
            "policy_version": str(review.policy_version),
        },
    )


def event_label_final(
    *, video_id: int, label: str, source: str, policy_version: Any = None, video: Video | None = None
) -> OutboxEvent:
    return event_record(
        type=EventType.LABEL_FINAL,
        video_id=video_id,
        data={
            **_video_ref(video_id, video),
            "label": label,
            "source": source,
            "policy_version": str(policy_version) if policy_version is not None else None,
        },
    )


def event_tags_final(*, video_id: int, tags: list[str], by: str = "", video: Video | None = None) -> OutboxEvent:
    """Called by the tagging wing's ``tags_finalize``, in its transaction. ``by`` (the reviewer's user name)
    stays in the outbox for the operators; deliveries leave it out (``event_body``)."""
    return event_record(
        type=EventType.TAGS_FINAL, video_id=video_id, data={**_video_ref(video_id, video), "tags": tags, "by": by}
    )


def event_model_promoted(*, model_version: Any, scope: str) -> OutboxEvent:
    return event_record(
        type=EventType.MODEL_PROMOTED,
        data={
            "model_version": model_version.name,
            "model_version_id": model_version.pk,
            "backend": model_version.backend,
            "scope": scope,
        },
    )
