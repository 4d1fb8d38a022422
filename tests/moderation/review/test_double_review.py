"""N independent reviews per item, disagreement to adjudication, gold items scoring reviewers."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.labels.models import ItemLabel
from moderation.review.models import AuditEvent, Review, ReviewQueue, ReviewTask
from moderation.review.selectors import review_gold_accuracy
from moderation.review.services import (
    review_claim_next,
    review_release,
    review_submit,
    review_tasks_create_for_decision,
)
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def double(db):  # type: ignore[no-untyped-def]
    return ReviewQueue.objects.create(name="Double", slug="double", required_reviews=2)


def _item(policy_version, **kwargs):  # type: ignore[no-untyped-def]
    decision = DecisionFactory(policy_version=policy_version, **kwargs)
    return decision, review_tasks_create_for_decision(decision=decision)


def test_each_item_gets_n_reviews_from_n_different_reviewers(double, policy_version, make_user):
    decision, tasks = _item(policy_version)
    assert len(tasks) == 2
    alice, bob = make_user("moderator"), make_user("moderator")

    a = review_claim_next(user=alice, queue=double)
    review_submit(task=a, user=alice, verdict="approve")
    # Alice already reviewed this item: its second slot is not for her.
    assert review_claim_next(user=alice, queue=double) is None
    b = review_claim_next(user=bob, queue=double)
    assert b.decision_id == decision.pk and b.pk != a.pk
    review_submit(task=b, user=bob, verdict="approve")

    assert Review.objects.filter(decision=decision).count() == 2
    assert ItemLabel.objects.get(video=decision.video, source=ItemLabel.Source.REVIEW).label == decision.label
    assert not ReviewTask.objects.filter(queue__slug=ReviewQueue.ADJUDICATION_SLUG).exists()


def test_one_reviewer_cannot_hold_both_slots(double, policy_version, make_user):
    _item(policy_version)
    alice = make_user("moderator")
    first = review_claim_next(user=alice, queue=double)
    review_release(task=first, user=alice)
    again = review_claim_next(user=alice, queue=double)
    # Released and re-claimed, she still holds one slot at a time, never both.
    assert ReviewTask.objects.filter(claimed_by=alice, status=ReviewTask.Status.CLAIMED).count() == 1
    assert review_claim_next(user=alice, queue=double).pk == again.pk


def test_reviewers_do_not_see_each_others_verdicts(double, policy_version, make_user):
    _item(policy_version)
    alice, bob = make_user("moderator"), make_user("moderator")
    a = review_claim_next(user=alice, queue=double)
    review_submit(task=a, user=alice, verdict="override", label="色情低俗", severity="high", note="ALICE-SECRET-NOTE")
    b = review_claim_next(user=bob, queue=double)
    client = Client()
    client.force_login(bob)
    html = client.get(reverse("moderation:review_task", args=[b.pk])).content.decode()
    assert "ALICE-SECRET-NOTE" not in html and alice.username not in html
    assert 'id="prior-reviews"' not in html


def test_disagreement_goes_to_adjudication_which_settles_the_label(double, policy_version, make_user):
    decision, _ = _item(policy_version)
    alice, bob, judge = make_user("moderator"), make_user("moderator"), make_user("moderator")
    review_submit(task=review_claim_next(user=alice, queue=double), user=alice, verdict="approve")
    assert not ItemLabel.objects.filter(source=ItemLabel.Source.REVIEW).exists()  # waits for the second review
    review_submit(
        task=review_claim_next(user=bob, queue=double),
        user=bob,
        verdict="override",
        label="色情低俗",
        severity="high",
        note="BOB-NOTE",
    )

    assert not ItemLabel.objects.filter(source=ItemLabel.Source.REVIEW).exists()
    adjudication = ReviewTask.objects.get(queue__slug=ReviewQueue.ADJUDICATION_SLUG)
    assert adjudication.decision == decision
    assert AuditEvent.objects.get(action="disagreement").payload["labels"] == sorted([decision.label, "色情低俗"])

    adj_queue = adjudication.queue
    task = review_claim_next(user=judge, queue=adj_queue)
    client = Client()
    client.force_login(judge)
    html = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert 'id="prior-reviews"' in html and "BOB-NOTE" in html  # the adjudicator sees both verdicts
    review_submit(task=task, user=judge, verdict="override", label="色情低俗", severity="high")
    assert ItemLabel.objects.get(video=decision.video, source=ItemLabel.Source.REVIEW).label == "色情低俗"


def test_gold_items_are_mixed_in_and_score_reviewers(policy_version, make_user, monkeypatch, client_as):
    from moderation.review import services

    queue = ReviewQueue.objects.create(name="With gold", slug="gold", gold_rate=0.5)
    gold_a, _ = _item(policy_version, label="正向")
    gold_b, _ = _item(policy_version, label="正向")
    for decision, known in ((gold_a, "正向"), (gold_b, "色情低俗")):
        ItemLabel.objects.create(video=decision.video, label=known, source=ItemLabel.Source.IMPORT)
    regular, _ = _item(policy_version)
    ReviewTask.objects.update(queue=queue)
    alice = make_user("moderator")

    draws = iter([0.1, 0.9, 0.1])  # gold, regular, gold
    monkeypatch.setattr(services.rng, "random", lambda: next(draws))
    first = review_claim_next(user=alice, queue=queue)
    assert first.is_gold and first.decision == gold_a
    review_submit(task=first, user=alice, verdict="approve")  # matches the known answer
    second = review_claim_next(user=alice, queue=queue)
    assert not second.is_gold
    review_submit(task=second, user=alice, verdict="approve")
    third = review_claim_next(user=alice, queue=queue)
    assert third.is_gold and third.decision == gold_b
    review_submit(task=third, user=alice, verdict="approve")  # known answer was 色情低俗: wrong

    assert review_gold_accuracy(queues=[queue]) == [
        {"reviewer": alice.username, "answered": 2, "correct": 1, "accuracy": 0.5}
    ]
    # Gold reviews only score: the items' trusted labels are untouched by them.
    assert not ItemLabel.objects.filter(video=gold_b.video, source=ItemLabel.Source.REVIEW).exists()
    html = client_as("moderator").get(reverse("moderation:queue_detail", args=["gold"])).content.decode()
    assert f'data-gold-reviewer="{alice.username}"' in html and '<td data-stat="accuracy">0.500</td>' in html


def test_released_gold_item_is_dropped_not_left_for_others(policy_version, make_user, monkeypatch):
    from moderation.review import services

    queue = ReviewQueue.objects.create(name="All gold", slug="all-gold", gold_rate=1.0)
    decision, _ = _item(policy_version)
    ItemLabel.objects.create(video=decision.video, label="正向", source=ItemLabel.Source.IMPORT)
    ReviewTask.objects.update(status=ReviewTask.Status.DONE)
    monkeypatch.setattr(services.rng, "random", lambda: 0.0)
    alice = make_user("moderator")
    gold = review_claim_next(user=alice, queue=queue)
    assert gold.is_gold
    review_release(task=gold, user=alice)
    assert not ReviewTask.objects.filter(is_gold=True).exists()


def test_the_queue_list_and_the_claim_agree_on_the_other_slot_of_an_item_held(double, policy_version, make_user):
    """The queue list's check of "Claim next" (``review_queues_left_to_others``) left out the claim's rule that a
    reviewer never takes the second slot of an item they hold in a queue needing two reviews: for a queue whose only
    other waiting item was that slot, the list counted an item for her that the claim never hands her. Now both
    apply the one clause (``NOT_MINE_SQL``): nothing new for her (she continues the item she holds), the slot for
    another reviewer; a second item makes the queue hers to claim from again."""
    from moderation.review.selectors import review_queues_left_to_others
    from moderation.review.services import review_claim_ahead

    decision, _tasks = _item(policy_version)
    alice, bob = make_user("moderator"), make_user("moderator")
    held = review_claim_next(user=alice, queue=double)

    assert review_queues_left_to_others(queues=[double], user=alice) == {double.pk: {"worked": 0}}
    assert review_claim_ahead(user=alice, task=held) is None  # the claim: nothing new for her either
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("moderation:queue")).content.decode()
    assert reverse("moderation:review_task", args=[held.pk]) in page  # she continues what she holds
    assert '<tr data-queue="double">' in page and 'data-held-in="double"' in page and "data-not-open" not in page

    # The other direction: the slot is Bob's to claim, and the list says so.
    assert review_queues_left_to_others(queues=[double], user=bob) == {}
    slot = review_claim_next(user=bob, queue=double)
    assert slot.decision_id == decision.pk and slot.pk != held.pk
    review_release(task=slot, user=bob)

    # A second item waiting: the list offers Alice the queue, and the claim hands her that item, not the slot.
    other, _ = _item(policy_version)
    assert review_queues_left_to_others(queues=[double], user=alice) == {}
    assert review_claim_ahead(user=alice, task=held).decision_id == other.pk
