"""The operations dashboard: server-rendered plots with their numbers, admins only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from moderation.models import Decision, Review, ReviewTask
from moderation.ops.selectors import ops_dashboard
from tests.factories import DecisionFactory, ReviewFactory, ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_dashboard_numbers_follow_the_data(policy_version):
    now = timezone.now()
    # Two reviewers on one item who agree with each other (and override the model), one approval.
    decision = DecisionFactory(policy_version=policy_version, label="正向", cascade_stage=2, cascade_escalated=True)
    for _ in range(2):
        ReviewFactory(task=ReviewTaskFactory(decision=decision, slot=_), reviewer=UserFactory(role="moderator"))
    approved = DecisionFactory(policy_version=policy_version, label="正向", cascade_stage=1)
    ReviewFactory(task=ReviewTaskFactory(decision=approved), verdict="approve", label="正向")
    ReviewTask.objects.update(status="done", completed_at=now, deadline=now - timedelta(minutes=1))
    late_open = ReviewTaskFactory(decision=DecisionFactory(policy_version=policy_version))
    ReviewTask.objects.filter(pk=late_open.pk).update(deadline=now - timedelta(hours=1))
    ReviewTask.objects.filter(pk=late_open.pk).update(created_at=now - timedelta(hours=3))

    ops = ops_dashboard()
    assert ops["throughput"]["decisions_24h"] == Decision.objects.count() == 3
    assert ops["throughput"]["reviews_24h"] == Review.objects.count() == 3
    [row] = [r for r in ops["backlog"]["rows"] if r["pending"]]
    assert row["breached"] == 1 and 2.9 <= row["oldest_hours"] <= 3.1
    assert ops["sla"]["late_total"] == 3
    today = ops["reviewers"]["rows"][-1]
    assert today[1:5] == (3, 3, 1, 1.0)  # 3 reviews, 3 reviewers, 1 item reviewed twice, all agreed
    assert ops["model_human"]["agreement_total"] == pytest.approx(1 / 3)
    confusion = ops["model_human"]["confusion"]
    assert confusion["human_labels"] == ["引导私下交易", "正向"]
    assert confusion["rows"] == [("正向", [2, 1])]  # the model said 正向: humans said 引导私下交易 twice, 正向 once
    assert ops["cascade"]["rate_total"] == 0.5


def test_dashboard_page_renders_svg_plots_for_admins_only(client_as, policy_version):
    DecisionFactory(policy_version=policy_version, cascade_stage=1)
    page = client_as("admin").get("/ops/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<svg") >= 4 and "<polyline" in html and 'id="ops-cascade"' in html
    # The two bar charts of the backlog panel look alike: each says what it counts under it.
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import ReviewTaskFactory

    task = ReviewTaskFactory(decision__policy_version=policy_version)
    type(task).objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(hours=2))
    html = client_as("admin").get("/ops/").content.decode()
    for title in ("Open items per queue", "Oldest open item per queue, hours"):
        assert f'<p class="legend chart-title">{title}</p>' in html
    for role in ("moderator", "labeler", "policy_editor"):
        assert client_as(role).get("/ops/").status_code == 403
    assert Client().get("/ops/").status_code == 302


def test_an_empty_dashboard_says_there_is_nothing_yet_instead_of_dashes_of_zero(client_as):
    # "Reviewers kept the model's label in – of 0 reviews" and "0 of 0 items done ... after their deadline".
    html = client_as("admin").get("/ops/").content.decode()

    assert "No review of a model decision in 14 days: nothing to compare yet." in html
    assert "No item was done in 14 days, so none late." in html
    assert "– of 0 reviews" not in html.replace("<strong>", "").replace("</strong>", "")
