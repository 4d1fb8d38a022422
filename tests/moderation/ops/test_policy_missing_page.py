"""An auto-applied policy's videos without its verdict: a count and a bounded page, and "Repair now" as a POST.

The policy page said nothing of them; the only place they showed was the ops page's routing figures (every policy
together). A policy's own screen counts them (as far as 1,000), lists a page of 25 with each one's repair state,
and queues their missing decisions with a POST, at most ``ROUTING_REPAIR_BATCH`` a press.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from moderation.inference.models import MissingDecisionRepair
from moderation.ops.selectors import POLICY_MISSING_PAGE
from moderation.policies.models import Policy
from moderation.review.models import AuditEvent
from tests.factories import DecisionFactory, PolicyVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def minors(policy_version: Any) -> Policy:
    """An auto-applied policy that none of ``POLICY_MISSING_PAGE + 2`` videos decided under the default one has."""
    policy = Policy.objects.create(slug="minors", name="Minors", auto_apply=True)
    PolicyVersionFactory(policy=policy)
    for i in range(POLICY_MISSING_PAGE + 2):
        DecisionFactory(policy_version=policy_version, video__title=f"half {i}")
    return policy


def test_the_page_counts_them_lists_a_page_and_repair_now_queues_a_batch_with_a_post(
    minors: Policy, client_as: Any, settings: Any
) -> None:
    admin = client_as("admin")
    detail = admin.get(reverse("moderation:policy_detail", args=[minors.pk])).content.decode()
    url = reverse("moderation:ops_policy_missing", args=[minors.pk])
    assert f'href="{url}" id="policy-missing-link"' in detail

    page = admin.get(url).content.decode()
    n = POLICY_MISSING_PAGE + 2
    assert f"<strong>{n}</strong> decided videos lack a decision under this policy." in page
    assert page.count('<tr id="policy-missing-') == POLICY_MISSING_PAGE  # a page, not every one
    assert f"page 1 of 2 ({n} videos)" in page and "not queued" in page
    assert admin.get(url, {"page": 2}).content.decode().count('<tr id="policy-missing-') == 2
    repair = reverse("moderation:ops_policy_missing_repair", args=[minors.pk])
    assert f'<form method="post" action="{repair}"' in page
    assert admin.get(repair).status_code == 303  # a GET queues nothing
    assert not MissingDecisionRepair.objects.exists()

    settings.ROUTING_REPAIR_BATCH = 20
    said = admin.post(repair, follow=True).content.decode()

    assert MissingDecisionRepair.objects.filter(queued_at__isnull=False).count() == 20
    assert "Queued the missing decisions of 20 half-decided videos on the infer queue" in said
    assert f"{n - 20} more still to queue (at most 20 a press)" in said
    assert said.count("<td>queued ") == 20  # the first page's rows say which were queued (the first 20 by id)
    assert AuditEvent.objects.filter(action="missing_decisions.policy_repair").count() == 1
    admin.post(repair)
    assert MissingDecisionRepair.objects.count() == n  # the rest; the queued ones are not queued twice
    said = admin.post(repair, follow=True).content.decode()
    assert "Nothing to queue: every video listed is queued already" in said


def test_a_policy_deciding_on_request_has_none_and_only_operators_open_it(minors: Policy, client_as: Any) -> None:
    minors.auto_apply = False
    minors.save(update_fields=["auto_apply"])
    admin = client_as("admin")
    page = admin.get(reverse("moderation:ops_policy_missing", args=[minors.pk])).content.decode()
    assert 'id="policy-missing-none"' in page and "policy-missing-count" not in page
    said = admin.post(reverse("moderation:ops_policy_missing_repair", args=[minors.pk]), follow=True)
    assert "does not decide new videos" in said.content.decode() and not MissingDecisionRepair.objects.exists()
    moderator = client_as("moderator")
    assert moderator.get(reverse("moderation:ops_policy_missing", args=[minors.pk])).status_code == 403
    assert (
        'id="policy-missing-link"'
        not in moderator.get(reverse("moderation:policy_detail", args=[minors.pk])).content.decode()
    )
