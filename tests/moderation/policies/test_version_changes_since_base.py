"""A version's page marks what it changed since the version it was started from (``based_on``), drafts and
published versions alike: it was only behind a "changes from" link that went once the version was published."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.policies.models import PolicyVersion
from tests.factories import PolicyFactory, PolicyVersionFactory


def _tag(key: str, name: str, keywords: list[str]) -> dict[str, object]:
    return {"key": key, "name": name, "keywords": keywords}


BASE = [
    {"key": "违法", "name": "Illegal", "tags": [_tag("赌博", "Gambling", ["bet"]), _tag("毒品", "Drugs", ["pill"])]},
    {
        "key": "低俗",
        "name": "Vulgar",
        "tags": [_tag("擦边", "Borderline", ["tease"]), _tag("脏话", "Swearing", ["damn"])],
    },
]
# From BASE: 毒品 removed, 擦边 gains a keyword, 诈骗 and 引流 added; 赌博 and 脏话 as they were.
CHANGED = [
    {"key": "违法", "name": "Illegal", "tags": [_tag("赌博", "Gambling", ["bet"]), _tag("诈骗", "Fraud", ["scam"])]},
    {
        "key": "低俗",
        "name": "Vulgar",
        "tags": [_tag("擦边", "Borderline", ["tease", "wink"]), _tag("脏话", "Swearing", ["damn"])],
    },
    {"key": "营销", "name": "Marketing", "tags": [_tag("引流", "Traffic diversion", ["dm me"])]},
]


def _row(html: str, key: str) -> str:
    """The taxonomy table's cell of tag ``key`` (its key and any badge)."""
    found = re.search(rf"<td>{re.escape(key)}(.*?)</td>", html)
    assert found, key
    return found.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [PolicyVersion.Status.DRAFT, PolicyVersion.Status.PUBLISHED])
def test_a_versions_page_marks_what_changed_since_its_base(client_as, status):  # type: ignore[no-untyped-def]
    policy = PolicyFactory(slug="since", name="Since")
    v1 = PolicyVersionFactory(policy=policy, number=1, taxonomy=BASE, is_active=status == PolicyVersion.Status.DRAFT)
    v2 = PolicyVersionFactory(
        policy=policy, number=2, taxonomy=CHANGED, based_on=v1, status=status,
        is_active=status == PolicyVersion.Status.PUBLISHED,
    )  # fmt: skip
    client = client_as("policy_editor")
    url = reverse("moderation:policy_version", args=[v2.pk])
    with CaptureQueriesContext(connection) as with_base:
        html = client.get(url).content.decode()
    assert (
        '<p class="changes-since" id="changes-since">2 tags added, 1 changed, 1 removed (毒品), 1 category added since v1.'
        in html
    )
    diff_url = reverse("moderation:policy_diff", args=[policy.pk]) + f"?a={v1.pk}&amp;b={v2.pk}"
    assert f'href="{diff_url}" id="changes-from-base">All changes from v1</a>' in html  # published too
    assert _row(html, "诈骗") == ' <span class="badge change-mark">new</span>'
    assert _row(html, "引流") == ' <span class="badge change-mark">new</span>'
    assert _row(html, "擦边") == ' <span class="badge change-mark">changed</span>'
    assert _row(html, "赌博") == _row(html, "脏话") == ""
    assert '营销 <span class="badge change-mark">new</span>' in html
    assert "违法 <span" not in html

    # A version without based_on shows nothing extra.
    html = client.get(reverse("moderation:policy_version", args=[v1.pk])).content.decode()
    assert 'id="changes-since"' not in html and "change-mark" not in html
    # The marking costs no query: based_on is read with the version, the diff is of the two in memory.
    PolicyVersion.objects.filter(pk=v2.pk).update(based_on=None)
    with CaptureQueriesContext(connection) as without_base:
        assert 'id="changes-since"' not in client.get(url).content.decode()
    assert len(with_base.captured_queries) == len(without_base.captured_queries)
