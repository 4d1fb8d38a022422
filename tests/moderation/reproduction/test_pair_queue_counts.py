"""The pair queue's heading counts (waiting, claimed, reviewed) as far as the cap, no longer over every pair: below
the cap each is exactly what the old counts (the rule over every pair) gave, for readers who see different parts of
the library (outside the restricted group, in it, in no group, admin), with pairs whose videos are undecided,
restricted, routed before their item, or the reader's own uploads; past it "N+"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.reproduction import selectors
from moderation.reproduction.models import PairReview, ReproCandidate
from tests.workbench import test_pagination_screens
from workbench import pagination
from workbench.pagination import CappedCount

pytestmark = pytest.mark.django_db

# The screens' library and readers (a fixture): one video per case of the rule, pairs both ways, verdicts, claims.
world, world_of_the_module = test_pagination_screens.world, test_pagination_screens.world_of_the_module


def _old_counts(user: Any) -> dict[str, int]:
    """The heading's counts as main counted them before: the rule applied to every pair."""
    waiting = selectors.pairs_open_to(
        user=user, pairs=ReproCandidate.objects.filter(score__gte=selectors.PAIR_QUEUE_THRESHOLD, review__isnull=True)
    )
    return {
        "pending": selectors.pairs_open_to(user=user, pairs=selectors.pair_queue_pending()).count(),
        "claimed": waiting.filter(claimed_by__isnull=False, lease_expires_at__gte=timezone.now()).count(),
        "reviewed": selectors.pairs_open_to(user=user, pairs=selectors.pairs_reviewed()).count(),
    }


def _claims(readers: dict[str, Any]) -> None:
    """Live claims by each reader too (the fixture's are the admin's), a decided pair whose claim's lease was
    cleared, and a released one: none of the last two is claimed."""
    now = timezone.now()
    open_pairs = list(ReproCandidate.objects.filter(review__isnull=True, claimed_by__isnull=True).order_by("pk"))
    for reader, pair in zip(readers.values(), open_pairs[::4], strict=False):
        ReproCandidate.objects.filter(pk=pair.pk).update(
            claimed_by=reader, claimed_at=now, lease_expires_at=now + timedelta(minutes=5)
        )
    decided = PairReview.objects.order_by("pk").first()
    assert decided is not None
    ReproCandidate.objects.filter(pk=decided.candidate_id).update(claimed_by=readers["outsider"], claimed_at=now)


@pytest.mark.parametrize("max_window", [16_000, 12, 4])
def test_each_count_is_the_old_one_below_the_cap_and_n_plus_past_it(
    world: dict[str, Any], monkeypatch, max_window: int
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pagination, "_window_limit", lambda model: max_window)
    readers = world["readers"]
    _claims(readers)
    seen: set[tuple[int, ...]] = set()
    for name, reader in readers.items():
        old = _old_counts(reader)
        seen.add(tuple(old.values()))
        assert old["pending"] and old["reviewed"] and old["claimed"], name
        most = max(old.values())
        for cap in (1000, most, most - 1, 3, 1):
            new = selectors.pair_queue_stats(user=reader, cap=cap)
            for key, n in old.items():
                expected = CappedCount(n) if key == "claimed" or n <= cap else CappedCount(cap, exact=False)
                assert new[key] == expected, (name, cap, key, n)
    # The readers see different parts of the library: the counts tell them apart.
    assert len(seen) == len(readers)


def test_the_heading_says_the_old_counts_and_n_plus_past_the_cap(world: dict[str, Any], client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    readers = world["readers"]
    _claims(readers)
    url = reverse("moderation:repro_queue")
    for name, reader in readers.items():
        client.force_login(reader)
        old = _old_counts(reader)
        html = client.get(url).content.decode()
        said = f"{old['pending']} waiting · {old['claimed']} claimed · "
        assert said in html and f">{old['reviewed']} reviewed</a>" in html, name
        with monkeypatch.context() as capped:
            capped.setattr(pagination, "COUNT_CAP", 2)
            # The waiting pairs are counted as far as the page read them (past the cap: a page of 50 reads 51).
            capped.setattr("moderation.reproduction.views.PAIRS_PER_PAGE", 1)
            html = client.get(url).content.decode()
        assert f"2+ waiting · {old['claimed']} claimed · " in html and ">2+ reviewed</a>" in html, name


def test_the_claimed_count_reads_the_live_leases_only(world: dict[str, Any], django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    """A verdict keeps its claimer and clears the lease: the live claims are the pairs with a lease still running,
    which the partial index ``repro_candidate_live_lease`` holds (with the lapsed ones)."""
    from django.db import connection

    _claims(world["readers"])
    live = selectors.pairs_claimed_live()
    assert set(live.values_list("pk", flat=True)) == set(
        ReproCandidate.objects.filter(claimed_by__isnull=False, lease_expires_at__gte=timezone.now()).values_list(
            "pk", flat=True
        )
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = live.order_by().query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "repro_candidate_live_lease" in plan
