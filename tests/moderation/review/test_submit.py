"""Submitting verdicts: ownership and late submits, double submits, approve and override."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.labels.models import ItemLabel
from moderation.review.models import Review, ReviewTask
from moderation.review.services import review_claim_next, review_submit

pytestmark = pytest.mark.django_db


def _expire(task: ReviewTask) -> None:
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))


def test_approve_stores_the_model_label_and_closes_the_task(make_task, make_user):
    task = make_task(decision__label="引导私下交易", decision__is_violation=True)
    alice = make_user("moderator")
    review_claim_next(user=alice)

    review = review_submit(task=task, user=alice, verdict="approve", label="正向", severity="medium")

    task.refresh_from_db()
    assert review.label == "引导私下交易" and review.verdict == Review.Verdict.APPROVE and review.severity == "medium"
    assert review.policy_version == task.decision.policy_version
    assert task.status == ReviewTask.Status.DONE and task.completed_at is not None
    assert ItemLabel.objects.get(video=task.decision.video, source=ItemLabel.Source.REVIEW).label == "引导私下交易"


def test_override_stores_label_note_and_policy_version(make_task, make_user, policy_version):
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)

    review = review_submit(
        task=task, user=alice, verdict="override", label="夸大商品功效", severity="low", note="cures everything"
    )

    review.refresh_from_db()
    assert (review.verdict, review.label, review.severity, review.note) == (
        "override",
        "夸大商品功效",
        "low",
        "cures everything",
    )
    assert review.policy_version == policy_version
    assert review.reviewer == alice


@pytest.mark.parametrize(
    ("label", "message"),
    [("", "Choose the label"), ("not-a-label", "is not a label"), ("正向", "use Approve")],
)
def test_override_needs_a_different_policy_label(make_task, make_user, label, message):
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    with pytest.raises(ModerationError, match=message):
        review_submit(task=task, user=alice, verdict="override", label=label)
    assert not Review.objects.exists()
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED


def test_late_submit_by_the_owner_is_accepted_while_no_one_else_claimed(make_task, make_user):
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    _expire(task)

    review = review_submit(task=task, user=alice, verdict="approve")

    assert review.reviewer == alice


def test_late_submit_after_someone_else_claimed_is_refused(make_task, make_user):
    task = make_task()
    alice, bob = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice)
    _expire(task)
    assert review_claim_next(user=bob).pk == task.pk

    with pytest.raises(ModerationError, match="claimed by another reviewer; if it was yours, your claim expired"):
        review_submit(task=task, user=alice, verdict="approve")

    assert review_submit(task=task, user=bob, verdict="approve").reviewer == bob


def test_unclaimed_item_cannot_be_submitted(make_task, make_user):
    task = make_task()
    with pytest.raises(ModerationError, match="not claimed by you"):
        review_submit(task=task, user=make_user("moderator"), verdict="approve")


def test_double_submit_records_one_review(make_task, make_user):
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    review_submit(task=task, user=alice, verdict="approve")

    with pytest.raises(ModerationError, match="Already reviewed"):
        review_submit(task=task, user=alice, verdict="override", label="夸大商品功效", severity="low")

    assert Review.objects.filter(task=task).count() == 1
    assert Review.objects.get(task=task).verdict == "approve"


@pytest.mark.django_db(transaction=True)
def test_a_review_left_on_an_open_task_refuses_the_submit_cleanly(make_task, make_user):
    """Only the one-review-per-task constraint stands in the way (the task was never marked done):
    a clear refusal, not a database error."""
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    review = review_submit(task=task, user=alice, verdict="approve")
    ReviewTask.objects.filter(pk=task.pk).update(status=ReviewTask.Status.CLAIMED, completed_at=None)

    with pytest.raises(ModerationError, match="Already reviewed"):
        review_submit(task=task, user=alice, verdict="override", label="夸大商品功效", severity="low")

    assert list(Review.objects.filter(task=task)) == [review]
