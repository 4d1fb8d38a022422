"""A gold item (known answer) claimed from two tabs at the same instant: each claim found no item of the reviewer's
and made a gold item, so the reviewer held two (gold items sit outside ``one_task_per_slot``). Now the later claim
waits for the earlier and is handed the same item."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from moderation.labels.models import ItemLabel
from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.services import review_claim_ahead, review_claim_next, review_tasks_create_for_decision
from tests.factories import DecisionFactory
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def all_gold(policy_version, monkeypatch):  # type: ignore[no-untyped-def]
    from moderation.review import services

    monkeypatch.setattr(services.rng, "random", lambda: 0.0)  # every claim draws gold
    queue = ReviewQueue.objects.create(name="All gold", slug="all-gold", gold_rate=1.0)
    for _ in range(3):
        decision = DecisionFactory(policy_version=policy_version)
        review_tasks_create_for_decision(decision=decision)
        ItemLabel.objects.create(video=decision.video, label="正向", source=ItemLabel.Source.IMPORT)
    return queue


def test_two_tabs_claiming_at_once_get_one_gold_item(all_gold, make_user) -> None:
    alice = make_user("moderator")

    raced = race(
        lambda: review_claim_next(user=User.objects.get(pk=alice.pk), queue=all_gold),
        lambda: review_claim_next(user=User.objects.get(pk=alice.pk), queue=all_gold),
    )

    assert isinstance(raced.first, ReviewTask) and isinstance(raced.second, ReviewTask), raced.second
    assert raced.second_waited
    held = ReviewTask.objects.filter(claimed_by=alice, status=ReviewTask.Status.CLAIMED)
    assert held.filter(is_gold=True).count() == 1  # was 2
    assert raced.first.pk == raced.second.pk


def test_the_item_claimed_ahead_of_a_gold_item_is_not_a_second_gold_item(all_gold, make_user) -> None:
    alice = make_user("moderator")
    gold = review_claim_next(user=alice, queue=all_gold)
    assert gold.is_gold

    ahead = review_claim_ahead(user=alice, task=gold)

    assert ahead is not None and not ahead.is_gold
    assert ReviewTask.objects.filter(claimed_by=alice, is_gold=True).count() == 1
