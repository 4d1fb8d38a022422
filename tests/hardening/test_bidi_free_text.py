"""Free text one user writes and others read kept invisible bidi controls, which titles, file names, descriptions and
tag names lose (``workbench.text``): "refund \\u202e0011 2233" displays as another number. Each is now stored without
them, in the one place it is saved."""

from __future__ import annotations

import copy

import pytest

from moderation.media.models import Video
from tests.factories import CotCorrectionFactory, ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SPOOF = f"Call \u202e0011 2233\u202c now{CONTROLS}"


def test_viewer_comments_sent_with_a_video_are_stored_without_bidi_controls(tmp_path) -> None:
    from moderation.media.ingest import video_ingest

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"c" * 512)
    video = video_ingest(path=clip, title="Deal", comments=[SPOOF, "שלום 视频"])
    assert Video.objects.get(pk=video.pk).comments == ["Call 0011 2233 now", "שלום 视频"]


def test_a_reviewers_note_and_an_escalation_reason_are_stored_without_bidi_controls(policy_version) -> None:
    from moderation.review.models import AuditEvent, Review, ReviewQueue
    from moderation.review.services import review_claim_next, review_escalate, review_queue_default, review_submit

    reviewer = UserFactory(role="moderator")
    ReviewTaskFactory(decision__policy_version=policy_version)
    review_submit(task=review_claim_next(user=reviewer), user=reviewer, verdict="approve", note=SPOOF)
    assert Review.objects.get().note == "Call 0011 2233 now"

    default = review_queue_default()
    default.escalation_queue = ReviewQueue.objects.create(slug="senior", name="Senior")
    default.save()
    ReviewTaskFactory(decision__policy_version=policy_version)
    senior = review_escalate(task=review_claim_next(user=reviewer), user=reviewer, reason=f"Unsure: {SPOOF}")
    assert AuditEvent.objects.get(action="escalate").payload["reason"] == "Unsure: Call 0011 2233 now"
    assert senior.queue.slug == "senior"


def test_a_corrections_reject_reason_is_stored_without_bidi_controls(policy_version) -> None:
    from annotation.services import cot_correction_reject

    correction = CotCorrectionFactory(decision__policy_version=policy_version)
    rejected = cot_correction_reject(
        correction=correction, by=UserFactory(role="labeler"), base_revision=correction.revision, reason=SPOOF
    )
    rejected.refresh_from_db()
    assert rejected.reject_reason == "Call 0011 2233 now"


def test_policy_names_version_notes_and_taxonomy_names_are_stored_without_bidi_controls(policy_version) -> None:
    from moderation.admin import PolicyAdminForm
    from moderation.policies.services import policy_version_create_draft

    base = policy_version
    taxonomy = copy.deepcopy(base.taxonomy)
    taxonomy[0]["name"] = f"Fraud{CONTROLS}"
    taxonomy[0]["tags"][0]["name"] = "Fake \u202eprize"
    taxonomy[0]["tags"][0]["criteria"] = [SPOOF]
    draft = policy_version_create_draft(
        policy=base.policy, taxonomy=taxonomy, by=UserFactory(role="policy_editor"), notes=SPOOF
    )
    draft.refresh_from_db()
    assert draft.notes == "Call 0011 2233 now"
    assert draft.taxonomy[0]["name"] == "Fraud"
    assert draft.taxonomy[0]["tags"][0]["name"] == "Fake prize"
    assert draft.taxonomy[0]["tags"][0]["criteria"] == ["Call 0011 2233 now"]

    form = PolicyAdminForm(data={"slug": "ads", "name": "Ads \u2067policy\u2069", "auto_apply": True})
    assert form.is_valid(), form.errors
    assert form.save().name == "Ads policy"


def test_free_text_stored_before_loses_its_bidi_controls_once(policy_version) -> None:
    from importlib import import_module

    from django.apps import apps

    from moderation.policies.models import Policy, PolicyVersion
    from moderation.review.models import Review
    from tests.factories import ReviewFactory, VideoFactory

    migration = import_module("moderation.migrations.0057_free_text_without_bidi_controls")
    video = VideoFactory(description=SPOOF, comments=[SPOOF, "fine"], file="")
    plain = VideoFactory(description="שלום", comments=["שלום"], file="")
    review = ReviewFactory(task__decision__policy_version=policy_version, note=SPOOF)
    Policy.objects.filter(pk=policy_version.policy_id).update(name="Ads \u202epolicy")
    PolicyVersion.objects.filter(pk=policy_version.pk).update(notes=SPOOF)

    migration.strip_bidi_controls(apps, None)

    video.refresh_from_db()
    assert (video.description, video.comments) == ("Call 0011 2233 now", ["Call 0011 2233 now", "fine"])
    assert Video.objects.filter(pk=plain.pk, description="שלום", comments=["שלום"]).exists()
    assert Review.objects.get(pk=review.pk).note == "Call 0011 2233 now"
    assert Policy.objects.get(pk=policy_version.policy_id).name == "Ads policy"
    assert PolicyVersion.objects.get(pk=policy_version.pk).notes == "Call 0011 2233 now"


def test_reasons_and_notes_labelers_stored_before_lose_their_bidi_controls_once(policy_version) -> None:
    from importlib import import_module

    from django.apps import apps

    from annotation.models import Adjudication, CotCorrection

    migration = import_module("annotation.migrations.0005_notes_without_bidi_controls")
    correction = CotCorrectionFactory(decision__policy_version=policy_version, reject_reason=SPOOF)
    adjudication = Adjudication.objects.create(
        video=correction.decision.video, decision=correction.decision, kind="reported_pass", reason="r", note=SPOOF
    )

    migration.strip_bidi_controls(apps, None)

    assert CotCorrection.objects.get(pk=correction.pk).reject_reason == "Call 0011 2233 now"
    assert Adjudication.objects.get(pk=adjudication.pk).note == "Call 0011 2233 now"
