"""Concurrency pass (hadv14): conflicting edits that were already safe, raced on the real Postgres so they stay so.

Each case puts the second writer behind the first one's open transaction (``tests.races.race``): both have read
before either has written. The faults the pass found have their tests beside the code they fixed
(tests/moderation/tagging/test_concurrent_tagging.py, tests/moderation/review/test_roles_changed_mid_claim.py,
tests/training/test_concurrent_starts.py)."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.policies.models import PolicyVersion
from moderation.policies.services import StalePublishError, policy_version_create_draft, policy_version_publish
from moderation.review.models import Review, ReviewTask
from moderation.review.services import ALREADY_REVIEWED, NO_LONGER_YOURS, review_claim_next, review_submit
from tests.factories import ReviewTaskFactory
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_reviewer_in_two_tabs_sending_two_verdicts_at_once_records_the_first_only(policy_version, make_user):
    task = ReviewTaskFactory(decision__policy_version=policy_version)
    alice = make_user("moderator")
    assert review_claim_next(user=alice).pk == task.pk

    raced = race(
        lambda: review_submit(task=task, user=alice, verdict="approve"),
        lambda: review_submit(task=task, user=alice, verdict="override", label="色情低俗", severity="high"),
    )

    assert raced.second_waited
    assert isinstance(raced.first, Review)
    assert isinstance(raced.second, ModerationError) and str(raced.second) == ALREADY_REVIEWED
    assert list(Review.objects.values_list("verdict", flat=True)) == ["approve"]


def test_a_verdict_racing_the_claim_that_takes_over_a_lapsed_lease_is_refused(policy_version, make_user):
    task = ReviewTaskFactory(decision__policy_version=policy_version)
    alice, bob = make_user("moderator"), make_user("moderator")
    assert review_claim_next(user=alice).pk == task.pk
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    raced = race(
        lambda: review_claim_next(user=bob),  # takes the lapsed item, its row lock held until it commits
        lambda: review_submit(task=task, user=alice, verdict="approve"),
    )

    assert raced.second_waited
    assert raced.first.pk == task.pk
    assert isinstance(raced.second, ModerationError) and str(raced.second) == NO_LONGER_YOURS
    task.refresh_from_db()
    assert task.claimed_by_id == bob.pk and not Review.objects.exists()


def test_two_editors_publishing_two_drafts_of_one_policy_at_once_leave_one_active_version(policy_version, make_user):
    editor_a, editor_b = make_user("policy_editor"), make_user("policy_editor")
    v1 = policy_version

    def draft(keyword: str, by):  # type: ignore[no-untyped-def]
        taxonomy = copy.deepcopy(v1.taxonomy)
        taxonomy[0]["tags"][0]["keywords"].append(keyword)
        return policy_version_create_draft(policy=v1.policy, taxonomy=taxonomy, by=by)

    a, b = draft("alpha-word", editor_a), draft("beta-word", editor_b)

    raced = race(
        lambda: policy_version_publish(version=a, by=editor_a, replaces=v1.number),
        lambda: policy_version_publish(version=b, by=editor_b, replaces=v1.number),
    )

    assert raced.second_waited
    assert isinstance(raced.first, PolicyVersion) and raced.first.is_active
    assert isinstance(raced.second, StalePublishError)
    assert f"v{a.number} is active now" in str(raced.second)
    active = PolicyVersion.objects.filter(policy=v1.policy, is_active=True)
    assert list(active.values_list("pk", flat=True)) == [a.pk]
    b.refresh_from_db()
    assert b.status == PolicyVersion.Status.DRAFT  # still there to confirm over a, or to start again from a


def test_the_inference_task_delivered_twice_at_once_makes_one_decision_and_one_item(policy_version):
    """Both deliveries run the model (outside any transaction); the second then waits on the video's row and finds
    the first's decision: one decision, one review item, no IntegrityError."""
    from moderation.inference.models import Decision
    from moderation.inference.services import decisions_create_for_video
    from tests.factories import VideoFactory

    video = VideoFactory(file="", title="加微信私聊，低价出货", status="ready")

    raced = race(
        lambda: decisions_create_for_video(video_id=video.pk),
        lambda: decisions_create_for_video(video_id=video.pk),
    )

    assert raced.second_waited
    assert isinstance(raced.second, list), raced.second
    assert [d.pk for d in raced.second] == [d.pk for d in raced.first]
    assert Decision.objects.filter(video=video).count() == 1
    assert ReviewTask.objects.filter(decision__video=video).count() == 1
