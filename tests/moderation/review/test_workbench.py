"""The reviewer's screen, second round: severity, patch evidence, claim-ahead submit-and-next,
and a claim that costs one round trip."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.labels.models import ItemLabel
from moderation.media.models import Keyframe, Patch
from moderation.review.models import AuditEvent, Review, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next, review_submit
from tests.factories import PolicyVersionFactory, ReviewTaskFactory

pytestmark = pytest.mark.django_db


def _login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


# --- severity ------------------------------------------------------------------------------------


def test_severity_is_stored_and_must_fit_the_label(make_task, make_user, policy_version):
    alice = make_user("moderator")
    safe, violation, refused = make_task(), make_task(), make_task()

    review_claim_next(user=alice)
    # The non-violative label has one severity, filled in without asking.
    assert review_submit(task=safe, user=alice, verdict="approve").severity == "none"
    review_claim_next(user=alice)
    review = review_submit(task=violation, user=alice, verdict="override", label="色情低俗", severity="high")
    assert review.severity == "high"
    assert AuditEvent.objects.filter(action="review.override", payload__severity="high").exists()

    review_claim_next(user=alice)
    with pytest.raises(ModerationError, match="is a violation: choose its severity"):
        review_submit(task=refused, user=alice, verdict="override", label="色情低俗", severity="none")
    with pytest.raises(ModerationError, match="does not fit"):
        review_submit(task=refused, user=alice, verdict="approve", severity="extreme")
    assert not Review.objects.filter(task=refused).exists()


@pytest.mark.parametrize("verdict", ["override", "approve"])
def test_a_violation_verdict_without_severity_is_refused_and_nothing_is_saved(make_task, make_user, verdict):
    """The form says "a violation always has a severity"; the service held it only for "none": an empty severity
    on a violation was saved. The policy names no default severity to use instead, so it is refused."""
    task = make_task(decision__label="引导私下交易", decision__is_violation=True)
    alice = make_user("moderator")
    review_claim_next(user=alice)

    with pytest.raises(ModerationError, match="“色情低俗” is a violation: choose its severity \\(low, medium, high\\)"):
        review_submit(task=task, user=alice, verdict="override", label="色情低俗")
    with pytest.raises(ModerationError, match="“引导私下交易” is a violation: choose its severity"):
        review_submit(task=task, user=alice, verdict="approve", severity="  ")

    task.refresh_from_db()
    assert not Review.objects.exists() and not AuditEvent.objects.filter(action__startswith="review.").exists()
    assert task.status == ReviewTask.Status.CLAIMED and task.claimed_by == alice  # still theirs to decide


def test_approving_keeps_the_models_own_severity_when_none_is_chosen(make_user, policy_version):
    """Approve keeps the model's verdict, its severity included (a BLM-Guard decision names one)."""
    task = ReviewTaskFactory(
        decision__policy_version=policy_version,
        decision__label="色情低俗",
        decision__is_violation=True,
        decision__severity="medium",
    )
    alice = make_user("moderator")
    review_claim_next(user=alice)
    assert review_submit(task=task, user=alice, verdict="approve").severity == "medium"


def test_the_review_form_shows_why_a_violation_without_severity_was_refused(make_task, make_user):
    task = make_task()
    alice = make_user("moderator")
    client = _login(alice)
    review_claim_next(user=alice)
    url = reverse("moderation:review_submit", args=[task.pk])

    response = client.post(url, {"verdict": "override", "label": "色情低俗"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200 and 'id="review-screen"' in html and "data-verdict-form" in html
    assert "“色情低俗” is a violation: choose its severity (low, medium, high)." in html
    assert not Review.objects.exists()
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED and task.claimed_by == alice


def test_a_tag_that_defines_its_severities_restricts_the_choice(make_user):
    version = PolicyVersionFactory(
        taxonomy=[
            {
                "key": "fraud",
                "name": "Fraud",
                "tags": [
                    {"key": "scam", "name": "Scam", "keywords": ["scam"], "severities": ["high"]},
                    {"key": "spam", "name": "Spam", "keywords": ["spam"], "severities": ["low", "medium"]},
                ],
            }
        ]
    )
    alice = make_user("moderator")
    scam = ReviewTaskFactory(decision__policy_version=version, decision__label="scam", decision__is_violation=True)
    spam = ReviewTaskFactory(decision__policy_version=version, decision__label="scam", decision__is_violation=True)

    review_claim_next(user=alice)
    assert review_submit(task=scam, user=alice, verdict="approve").severity == "high"  # the only one allowed
    review_claim_next(user=alice)
    with pytest.raises(ModerationError, match="choose low, medium"):
        review_submit(task=spam, user=alice, verdict="override", label="spam", severity="high")

    html = _login(alice).get(reverse("moderation:review_task", args=[spam.pk])).content.decode()
    assert 'value="spam" data-severities="low medium"' in html
    assert 'data-model-severities="high"' in html


def test_severity_controls_and_shortcuts_are_on_screen(make_task, make_user):
    task = make_task()
    user = make_user("moderator")
    client = _login(user)
    client.post(reverse("moderation:claim_next"))

    html = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()

    for key, value in enumerate(("none", "low", "medium", "high")):
        assert f'<input type="radio" name="severity" value="{value}" data-hotkey="{key}">' in html
        assert f"<kbd>{key}</kbd>" in html
    resp = client.post(
        reverse("moderation:review_submit", args=[task.pk]),
        {"verdict": "override", "label": "色情低俗", "severity": "medium"},
        follow=True,
    )
    assert "severity medium" in resp.content.decode()
    assert Review.objects.get(task=task).severity == "medium"


# --- evidence: patch boxes, frames, on-screen text, comments -------------------------------------


def test_review_screen_draws_patch_boxes_that_cot_evidence_links_to(make_task, make_user):
    task = make_task(
        decision__video__uploader="shop_owner_88",
        decision__video__ocr_text="BUY NOW",
        decision__video__comments=["where to buy?", "<b>scam</b>"],
    )
    video = task.decision.video
    kf = Keyframe.objects.create(
        video=video, index=0, timestamp=2.5, image="keyframes/a.jpg", selected=True, width=320, height=180,
        ocr_text="加微信 abc123",
    )  # fmt: skip
    patch = Patch.objects.create(keyframe=kf, rank=0, method=Patch.Method.OCR, x=10, y=20, w=100, h=30, score=0.9)
    task.decision.__class__.objects.filter(pk=task.decision_id).update(
        cot=[
            {
                "key": "analysis",
                "title": "Analysis",
                "text": f"QR code [patch:{patch.pk}] on [frame:{kf.pk}]",
                "evidence": [
                    {"kind": "patch", "ref": patch.pk, "label": f"patch {patch.pk}"},
                    {"kind": "frame", "ref": kf.pk, "label": f"frame {kf.pk}"},
                ],
            }
        ]
    )
    user = make_user("moderator")
    review_claim_next(user=user)

    html = _login(user).get(reverse("moderation:review_task", args=[task.pk])).content.decode()

    assert f'<g id="patch-{patch.pk}" class="patch patch-ocr">' in html
    assert '<rect x="10" y="20" width="100" height="30"' in html
    # [patch:ID] jumps to (and highlights) the box; [frame:ID] seeks the player and marks the strip frame.
    assert f'<a href="#patch-{patch.pk}" data-patch="{patch.pk}" data-seek="2.5" class="ev-patch">' in html
    assert f'<a href="#frame-{kf.pk}" data-frame="{kf.pk}" data-seek="2.5" class="ev-frame">' in html
    assert f'id="frame-{kf.pk}" data-seek="2.5" class="selected"' in html
    assert "加微信 abc123" in html and "BUY NOW" in html  # per-frame OCR and the item's on-screen text
    assert "where to buy?" in html and "&lt;b&gt;scam&lt;/b&gt;" in html  # comments, escaped
    assert "shop_owner_88" in html and str(task.decision.policy_version) in html


def test_media_detail_page_uses_the_same_patch_overlay(make_user, make_task):
    task = make_task()
    kf = Keyframe.objects.create(
        video=task.decision.video, index=0, timestamp=1.0, image="k.jpg", selected=True, width=64, height=64
    )
    patch = Patch.objects.create(keyframe=kf, rank=0, method=Patch.Method.VIT, x=1, y=2, w=3, h=4, score=0.5)
    html = _login(make_user("moderator")).get(reverse("moderation:video_detail", args=[task.decision.video_id]))
    html = html.content.decode()
    assert f'<figure id="keyframe-{kf.pk}" class="kf-figure">' in html
    assert f'<g id="patch-{patch.pk}" class="patch patch-vit">' in html


# --- submit-and-next with the next item claimed ahead --------------------------------------------


def test_claim_takes_the_next_item_ahead_for_the_same_reviewer_only(make_task, make_user):
    first, second, third = make_task(priority=3), make_task(priority=2), make_task(priority=1)
    alice, bob = make_user("moderator"), make_user("moderator")
    client = _login(alice)

    resp = client.post(reverse("moderation:claim_next"))

    assert resp["Location"] == reverse("moderation:review_task", args=[first.pk])
    second.refresh_from_db()
    assert second.status == ReviewTask.Status.CLAIMED and second.claimed_by == alice  # visible as hers
    # The item held ahead is not given to anyone else.
    assert review_claim_next(user=bob).pk == third.pk
    assert review_claim_next(user=make_user("moderator")) is None
    # Reloading or claiming again never hoards a third item: she still holds exactly two.
    client.post(reverse("moderation:claim_next"))
    assert ReviewTask.objects.filter(claimed_by=alice, status=ReviewTask.Status.CLAIMED).count() == 2
    # Her screen preloads the item ahead.
    html = client.get(reverse("moderation:review_task", args=[first.pk])).content.decode()
    assert f'<link rel="prefetch" href="{second.decision.video.file.url}" data-ahead-media>' in html


def test_htmx_submit_returns_the_next_item_in_the_same_response(make_task, make_user):
    first = make_task(priority=3, decision__video__title="FIRST-ITEM")
    second = make_task(priority=2, decision__video__title="SECOND-ITEM")
    third = make_task(priority=1, decision__video__title="THIRD-ITEM")
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))

    resp = client.post(
        reverse("moderation:review_submit", args=[first.pk]),
        {"verdict": "override", "label": "色情低俗", "severity": "low"},
        HTTP_HX_REQUEST="true",
    )

    # No redirect, no second request: the next item's screen is this response.
    assert resp.status_code == 200
    html = resp.content.decode()
    assert resp["HX-Push-Url"] == reverse("moderation:review_task", args=[second.pk])
    assert f'<div id="review-screen" data-task="{second.pk}" hx-history="false"' in html and "SECOND-ITEM" in html
    assert "<html" not in html and "FIRST-ITEM" not in html
    assert f"Recorded for item #{first.pk}: label overridden to 色情低俗, severity low." in html
    # ...and the item after it is claimed ahead and preloaded in turn.
    third.refresh_from_db()
    assert third.claimed_by == alice
    assert f'<link rel="prefetch" href="{third.decision.video.file.url}"' in html

    # The last one: the queue is empty, htmx is sent to the queue page.
    client.post(reverse("moderation:review_submit", args=[second.pk]), {"verdict": "approve"}, HTTP_HX_REQUEST="true")
    resp = client.post(
        reverse("moderation:review_submit", args=[third.pk]), {"verdict": "approve"}, HTTP_HX_REQUEST="true"
    )
    assert resp["HX-Redirect"] == reverse("moderation:queue")
    assert Review.objects.filter(reviewer=alice).count() == 3


def test_htmx_submit_error_stays_on_the_item_with_the_message(make_task, make_user):
    task = make_task()
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))
    resp = client.post(
        reverse("moderation:review_submit", args=[task.pk]), {"verdict": "override"}, HTTP_HX_REQUEST="true"
    )
    assert resp.status_code == 200
    assert f'data-task="{task.pk}"' in resp.content.decode() and "Choose the label" in resp.content.decode()
    # Still the same item: its address replaces the current history entry; a pushed one made Back do nothing.
    assert resp["HX-Replace-Url"] == reverse("moderation:review_task", args=[task.pk])
    assert "HX-Push-Url" not in resp


def test_item_held_ahead_is_released_on_logout_and_taken_back_when_its_lease_lapses(make_task, make_user):
    first, second = make_task(priority=2), make_task(priority=1)
    alice, bob = make_user("moderator"), make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))
    # The lease of the item held ahead lapses: another reviewer may take it, like any claim.
    ReviewTask.objects.filter(pk=second.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_claim_next(user=bob).pk == second.pk
    resp = client.post(reverse("moderation:review_submit", args=[first.pk]), {"verdict": "approve"})
    assert resp["Location"] == reverse("moderation:queue")  # nothing left for her; never bob's item

    third = make_task()
    client.post(reverse("moderation:claim_next"))
    assert ReviewTask.objects.get(pk=third.pk).claimed_by == alice
    client.post("/logout/")
    assert not ReviewTask.objects.filter(claimed_by=alice, status=ReviewTask.Status.CLAIMED).exists()


def test_skip_does_not_take_the_skipped_item_back_ahead(make_task, make_user):
    first, second, third = make_task(priority=3), make_task(priority=2), make_task(priority=1)
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))
    resp = client.post(reverse("moderation:review_skip", args=[first.pk]), {"reason": "Conflict of interest"})
    assert resp["Location"] == reverse("moderation:review_task", args=[second.pk])
    held = set(
        ReviewTask.objects.filter(claimed_by=alice, status=ReviewTask.Status.CLAIMED).values_list("pk", flat=True)
    )
    assert held == {second.pk, third.pk}


# --- the claim statement -----------------------------------------------------------------------


def test_a_claim_is_one_query_and_writes_its_audit_row(make_task, make_user):
    make_task(), make_task()
    alice = make_user("moderator")
    assert alice.has_perm("moderation.review_video")  # permissions cached on the user, as in a request
    queue = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)

    with CaptureQueriesContext(connection) as ctx:
        task = review_claim_next(user=alice, queue=queue)
    assert len(ctx.captured_queries) == 1
    event = AuditEvent.objects.get(action="claim", object_id=str(task.pk))
    assert event.actor_id == alice.pk and event.payload == {"queue": queue.slug}

    with CaptureQueriesContext(connection) as ctx:
        again = review_claim_next(user=alice, queue=queue)  # own claim: renewed, not re-audited
    assert len(ctx.captured_queries) == 1 and again.pk == task.pk
    assert AuditEvent.objects.filter(action="claim").count() == 1


def test_a_submit_is_a_fixed_handful_of_statements_and_upserts_the_label(make_task, make_user):
    first, second = make_task(), make_task()
    video = second.decision.video  # reviewed before: its review label is updated in place
    ItemLabel.objects.create(video=video, source=ItemLabel.Source.REVIEW, label="正向")
    alice = make_user("moderator")
    assert alice.has_perm("moderation.review_video")
    queue = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    counts = []
    for task, verdict, label in ((first, "approve", ""), (second, "override", "色情低俗")):
        assert review_claim_next(user=alice, queue=queue).pk == task.pk
        with CaptureQueriesContext(connection) as ctx:
            review_submit(task=task, user=alice, verdict=verdict, label=label, severity="high" if label else "")
        counts.append(len(ctx.captured_queries))
    # lock task and decision (+ queue, policy version), insert review, update task, audit,
    # siblings, label upsert, the review.completed and label.final outbox rows, the four-eyes check (no earlier
    # escalation or verdict of this reviewer on the same decision) — plus the savepoint pair of the test's transaction.
    assert counts[0] == counts[1] <= 11
    labels = ItemLabel.objects.filter(video=video, source=ItemLabel.Source.REVIEW)
    assert [label.label for label in labels] == ["色情低俗"]
    assert (
        ItemLabel.objects.get(video=first.decision.video, source=ItemLabel.Source.REVIEW).label == first.decision.label
    )


def test_lapsed_claim_taken_back_is_audited_with_its_previous_owner(make_task, make_user):
    task = make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice)
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert review_claim_next(user=bob).pk == task.pk
    event = AuditEvent.objects.filter(action="claim", actor=bob).get()
    assert event.payload == {"queue": "default", "lapsed_claim_of": alice.pk}


def test_restricted_queue_refuses_in_the_same_statement(make_user):
    from django.contrib.auth.models import Group

    seniors = Group.objects.create(name="seniors")
    queue = ReviewQueue.objects.create(name="Senior", slug="senior")
    queue.allowed_groups.add(seniors)
    outsider, senior = make_user("moderator"), make_user("moderator")
    senior.groups.add(seniors)
    with pytest.raises(ModerationError, match="may not work"):
        review_claim_next(user=outsider, queue=queue)
    assert review_claim_next(user=senior, queue=queue) is None


@pytest.mark.django_db(transaction=True)
def test_renewing_ones_own_claim_locks_no_other_item(make_task, make_user):
    """The claim statement's later legs (lapsed, pending) never run once the own claim is found,
    so they lock nothing another reviewer could be claiming meanwhile."""
    import threading

    from django.db import DatabaseError, transaction

    own, other = make_task(priority=2), make_task(priority=1)
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == own.pk
    seen: list[str] = []

    def probe() -> None:
        try:
            with transaction.atomic():
                ReviewTask.objects.select_for_update(nowait=True).get(pk=other.pk)
            seen.append("free")
        except DatabaseError:
            seen.append("locked")
        finally:
            connection.close()

    with transaction.atomic():  # hold whatever the claim locked
        assert review_claim_next(user=alice).pk == own.pk
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join(10)
    assert seen == ["free"]
