from typing import Any

from django.apps import AppConfig

from workbench.queues import enqueue


def _queue_inference(sender: Any, *, video_id: int, **kwargs: Any) -> None:
    enqueue("moderation.inference.tasks.run_inference", video_id)


def _queue_tag_candidates(sender: Any, *, video_id: int, **kwargs: Any) -> None:
    enqueue("moderation.tagging.tasks.generate_tag_candidates", video_id)
    # Source 5 only where a VLM serves (the task checks again: the serving model may change meanwhile).
    from moderation.tagging.selectors import tag_vlm_model

    if tag_vlm_model() is not None:
        enqueue("moderation.tagging.tasks.suggest_vlm_tags", video_id)


def _event_serving_model_changed(sender: Any, *, policy: Any, model_version: Any, **kwargs: Any) -> None:
    from moderation.integrations.services import event_model_promoted

    event_model_promoted(model_version=model_version, scope=f"policy:{policy.slug}")


def _audit_media_missing(
    sender: Any, *, video: Any, missing: list[str], new: list[str], by: Any, **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    if missing:
        audit_event_record(actor=by, action="media.missing", obj=video, payload={"missing": missing, "new": new})
    else:
        audit_event_record(actor=by, action="media.restored", obj=video)


def _audit_integration_changed(
    sender: Any, *, integration: Any, action: str, by: Any, payload: dict[str, Any], **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=by, action=action, obj=integration, payload={"name": integration.name, **payload})


def _audit_webhook_endpoint_changed(
    sender: Any, *, endpoint: Any, action: str, by: Any, payload: dict[str, Any], **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    # The integration is named so the log reads without opening the endpoint; the signing secret never is.
    named = {"integration": endpoint.integration_id, "url": endpoint.url}
    audit_event_record(actor=by, action=action, obj=endpoint, payload={**named, **payload})


def _audit_cascade_changed(
    sender: Any, *, model: Any, action: str, by: Any, payload: dict[str, Any], **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=by, action=action, obj=model, payload=payload)


def _audit_user_import_refused(sender: Any, *, user: Any, path: str, reason: str, **kwargs: Any) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=user, action="video.import_refused", obj=None, payload={"path": path, "reason": reason})


def _audit_api_token_changed(
    sender: Any, *, user: Any, action: str, by: Any, payload: dict[str, Any], **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=by, action=action, obj=user, payload=payload)


def _audit_policy_version_activated(
    sender: Any, *, version: Any, by: Any, action: str, payload: dict[str, Any], **kwargs: Any
) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=by, action=action, obj=version, payload=payload)


def _audit_policy_draft_saved(sender: Any, *, version: Any, by: Any, payload: dict[str, Any], **kwargs: Any) -> None:
    from moderation.review.services import audit_event_record

    audit_event_record(actor=by, action="policy.draft_save", obj=version, payload=payload)


def _queue_retrieval(sender: Any, *, video_id: int, **kwargs: Any) -> None:
    enqueue("moderation.reproduction.tasks.find_candidates", video_id)


class ModerationConfig(AppConfig):
    name = "moderation"

    def ready(self) -> None:
        from moderation import home
        from moderation.policies import checks  # noqa: F401  (registers the editor's settings check)
        from moderation.tagging import checks as tagging_checks  # noqa: F401  (TAG_VLM_MODEL against the registry)

        home.register()
        from django.contrib.auth.signals import user_logged_out

        from moderation.ops.metrics import collect
        from moderation.review.services import review_release_on_logout, review_route_decision
        from moderation.signals import (
            cascade_changed,
            decision_to_review,
            integration_changed,
            media_missing_changed,
            policy_draft_saved,
            policy_version_activated,
            serving_model_changed,
            user_import_refused,
            video_decided,
            video_ready,
            webhook_endpoint_changed,
        )
        from workbench.metrics import register_collector

        # A reviewer who logs out frees the items they held, so others need not wait for the lease.
        user_logged_out.connect(review_release_on_logout, dispatch_uid="moderation.review_release_on_logout")
        # A reviewer deactivated, demoted or taken out of a queue's groups frees the items they may no longer work at
        # once (not when the lease lapses), wherever that is done: the admin, a shell, a command.
        from django.contrib.auth.models import Group, User
        from django.db.models.signals import m2m_changed, post_save, pre_delete

        from moderation.review.services import (
            review_claims_on_access_changed,
            review_claims_on_group_deleted,
            review_claims_on_user_saved,
        )

        post_save.connect(review_claims_on_user_saved, sender=User, dispatch_uid="moderation.claims_user_saved")
        for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
            m2m_changed.connect(
                review_claims_on_access_changed, sender=through, dispatch_uid=f"moderation.claims_{through.__name__}"
            )
        pre_delete.connect(review_claims_on_group_deleted, sender=Group, dispatch_uid="moderation.claims_group_deleted")
        # Inference hands each decision to review (a wing above it), which routes it into its queues.
        decision_to_review.connect(review_route_decision, dispatch_uid="moderation.review_route_decision")
        # A ready video goes to inference, then to reproduction retrieval (in this order).
        video_ready.connect(_queue_inference, dispatch_uid="moderation.queue_inference")
        video_ready.connect(_queue_retrieval, dispatch_uid="moderation.queue_retrieval")
        # A decided video gets content-tag candidates.
        video_decided.connect(_queue_tag_candidates, dispatch_uid="moderation.queue_tag_candidates")
        # A policy served by another model: the model.promoted webhook event, in that transaction.
        serving_model_changed.connect(_event_serving_model_changed, dispatch_uid="moderation.event_model_promoted")
        # Stored media a screen found missing (or back): the audit log says which files, and who saw it.
        media_missing_changed.connect(_audit_media_missing, dispatch_uid="moderation.audit_media_missing")
        # An integration switched on or off, or given a new token: the audit log says who and when.
        integration_changed.connect(_audit_integration_changed, dispatch_uid="moderation.audit_integration_changed")
        # A webhook endpoint added, re-subscribed, enabled or disabled, a delivery re-sent: audited the same way.
        webhook_endpoint_changed.connect(
            _audit_webhook_endpoint_changed, dispatch_uid="moderation.audit_webhook_endpoint_changed"
        )
        # The cascade's stage 1 switched off or its routing set by hand (who changed what no human decides): audited.
        cascade_changed.connect(_audit_cascade_changed, dispatch_uid="moderation.audit_cascade_changed")
        # A user's server path refused (outside the roots, an integration's folder, a symlink swapped in): audited too.
        user_import_refused.connect(_audit_user_import_refused, dispatch_uid="moderation.audit_user_import_refused")
        # A user's API token made, rotated or revoked (the token API or their API token page): in the audit log too.
        from workbench.tokens import api_token_changed

        api_token_changed.connect(_audit_api_token_changed, dispatch_uid="moderation.audit_api_token_changed")
        # A large upload with an integration token is taken only when the token is valid (checked before the body).
        from moderation.integrations.api import integration_rate_wait_peek
        from moderation.integrations.services import integration_token_valid
        from workbench.tokens import upload_credential_checks, upload_rate_peeks

        upload_credential_checks["integration"] = integration_token_valid
        # And refused there, before the body too, once the integration's request rate is spent.
        upload_rate_peeks["integration"] = integration_rate_wait_peek
        # A policy version published or made active again: the audit log says who, what it replaced and, for a
        # draft started from an older version, that the editor confirmed replacing the active version's changes.
        policy_version_activated.connect(
            _audit_policy_version_activated, dispatch_uid="moderation.audit_policy_version_activated"
        )
        # A draft saved: who, from which version, and what it changed (fields and the taxonomy's changes).
        policy_draft_saved.connect(_audit_policy_draft_saved, dispatch_uid="moderation.audit_policy_draft_saved")
        # The audit log leaves out, for staff who may not see a video, the events about its pairs.
        from moderation.reproduction.models import ReproCandidate
        from moderation.review.selectors import audit_object_videos_register

        audit_object_videos_register(model=ReproCandidate, video_fields=("video_id", "original_id"))
        # Queue, model and webhook numbers for /metrics, read from the database at scrape time.
        register_collector(collect)
        # A worker uploads the models it kept in its own MODELS_DIR before they were shared (once, at start).
        from moderation.artifacts import connect_worker_start

        connect_worker_start()
        # A worker says at its start when WHISPER_DEVICE=auto found no GPU for a half-precision type.
        from moderation.media.extractors import connect_whisper_placement_note

        connect_whisper_placement_note()
