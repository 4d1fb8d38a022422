"""Agreement statistics against textbook examples, and the dashboard that shows them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from moderation.review.agreement import cohen_kappa, krippendorff_alpha_nominal
from moderation.review.selectors import review_agreement
from tests.factories import ReviewFactory, ReviewTaskFactory


def test_cohen_kappa_wikipedia_example():
    # 50 proposals: both yes 20, A yes / B no 5, A no / B yes 10, both no 15 → p_o 0.7, p_e 0.5, κ 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    # Systematic disagreement on a balanced binary task is κ = −1.
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None  # chance agreement already perfect
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_krippendorff_alpha_nominal_textbook_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units,
    # missing values; nominal α = 0.743.
    obs_a = [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None]
    obs_b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3]
    obs_c = [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None]
    obs_d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]
    alpha = krippendorff_alpha_nominal(zip(obs_a, obs_b, obs_c, obs_d, strict=True))
    assert alpha == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_two_raters_binary():
    # Hand-computed: units (0,1)(1,1)(0,1)(0,0)(0,0)(0,1)(0,0)(0,0)(1,0)(0,0) → coincidences
    # o01 = o10 = 4, o00 = 10, o11 = 2; n0 = 14, n1 = 6, n = 20 → α = 1 − 19·8 / (2·14·6) ≈ 0.0952.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    alpha = krippendorff_alpha_nominal(zip(a, b, strict=True))
    assert alpha == pytest.approx(0.095238, abs=1e-6)
    assert krippendorff_alpha_nominal([[1, 1], [2, 2], [3]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([[1], [2]]) is None
    assert krippendorff_alpha_nominal([[1, 1], [1, 1]]) is None


@pytest.mark.django_db
def test_agreement_per_queue_and_category_and_dashboard(policy_version, make_user, client_as):
    alice, bob = make_user("moderator"), make_user("moderator")
    # Three items reviewed by both: agree, agree, disagree.
    verdicts = [("正向", "正向"), ("色情低俗", "色情低俗"), ("正向", "色情低俗")]
    for a_label, b_label in verdicts:
        first = ReviewTaskFactory(decision__policy_version=policy_version, decision__label="正向", slot=0)
        second = ReviewTaskFactory(decision=first.decision, slot=1)
        ReviewFactory(task=first, reviewer=alice, label=a_label)
        ReviewFactory(task=second, reviewer=bob, label=b_label)

    result = review_agreement(queues=[first.queue])

    [row] = result["queues"]
    a = [v[0] for v in verdicts]
    b = [v[1] for v in verdicts]
    assert row["items"] == 3 and row["pairs"] == 1
    assert row["kappa"] == pytest.approx(cohen_kappa(a, b))
    assert row["alpha"] == pytest.approx(krippendorff_alpha_nominal(zip(a, b, strict=True)))
    assert [c["category"] for c in result["categories"]] == ["正向"]

    html = client_as("moderator").get(reverse("moderation:review_agreement")).content.decode()
    assert f"{row['kappa']:.3f}" in html and f"{row['alpha']:.3f}" in html


@pytest.mark.django_db
def test_a_category_with_no_twice_reviewed_item_is_not_listed_and_the_dashboard_says_why(
    policy_version, make_user, client_as
):
    """Seen in Chromium after the first approve of a fresh install: a row "引导私下交易 · 0 · 0 · — · —" under
    "Agreement per category", and never the table's own "No item has two reviews yet." """
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__label="引导私下交易", slot=0)
    ReviewFactory(task=task, reviewer=make_user("moderator"), label="引导私下交易")

    assert review_agreement(queues=[task.queue])["categories"] == []
    html = client_as("moderator").get(reverse("moderation:review_agreement")).content.decode()
    assert "No item has two reviews yet." in html and 'data-agreement-category="引导私下交易"' not in html


@pytest.mark.django_db
def test_the_dashboards_gold_accuracy_counts_only_the_queues_the_viewer_may_see(policy_version, make_user):
    """The gold table read every queue's gold reviews: a moderator outside a restricted queue's groups saw who
    worked there and how well, and their scores in open queues mixed with those they may not see."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from moderation.review.models import ReviewQueue

    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(name="Experts", slug="experts")
    restricted.allowed_groups.add(experts)
    insider = make_user("moderator")
    insider.groups.add(experts)
    open_task = ReviewTaskFactory(decision__policy_version=policy_version)
    ReviewFactory(task=open_task, reviewer=insider, gold_correct=True)
    for correct in (False, False):
        task = ReviewTaskFactory(decision__policy_version=policy_version, queue=restricted)
        ReviewFactory(task=task, reviewer=insider, gold_correct=correct)

    outsider = Client()
    outsider.force_login(make_user("moderator"))
    html = outsider.get(reverse("moderation:review_agreement")).content.decode()
    row = html.split(f'data-gold-reviewer="{insider.username}"')[1].split("</tr>")[0]
    assert "<td>1</td><td>1</td>" in row and '<td data-stat="accuracy">1.000</td>' in row

    member = Client()
    member.force_login(insider)
    html = member.get(reverse("moderation:review_agreement")).content.decode()
    row = html.split(f'data-gold-reviewer="{insider.username}"')[1].split("</tr>")[0]
    assert "<td>3</td><td>1</td>" in row and '<td data-stat="accuracy">0.333</td>' in row
