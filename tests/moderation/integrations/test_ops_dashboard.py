"""The operations dashboard: server-rendered plots with their numbers, admins only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from moderation.models import Decision, Review, ReviewTask
from moderation.ops.selectors import ops_dashboard
from tests.factories import DecisionFactory, ReviewFactory, ReviewTaskFactory, TagTaskFactory, UserFactory

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
    assert ops["throughput"]["decisions"] == Decision.objects.count() == 3
    assert ops["throughput"]["reviews"] == Review.objects.count() == 3
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


def test_a_platform_video_that_failed_before_its_decision_is_found_on_the_dashboard_and_retried_by_an_admin(
    policy_version, make_user
):
    """A video not decided yet is open only to its uploader and the admins; a platform's has no uploader. One
    whose processing failed before any decision was in no moderator's list, and the admins had nowhere to find
    it: the dashboard said nothing of failed videos and the video list had no filter (the home page's "failed in
    the last 24 h" count linked nowhere). The dashboard now counts them and links to the list's failed filter."""
    from django.urls import reverse

    from moderation.integrations.models import IntegrationVideo
    from moderation.integrations.services import integration_create
    from moderation.media.models import Video
    from tests.factories import DecidedVideoFactory, VideoFactory

    stopped = VideoFactory(title="Platform clip that stopped", status=Video.Status.FAILED, error="ffprobe: bad atom")
    IntegrationVideo.objects.create(integration=integration_create(name="platform-a")[0], video=stopped)
    fine = DecidedVideoFactory(title="A clip that was decided")
    admin, moderator = Client(), Client()
    admin.force_login(make_user("admin"))
    moderator.force_login(make_user("moderator"))

    page = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    failed_list = reverse("moderation:video_list") + "?status=failed"
    assert f'href="{failed_list}"' in page and ">1</strong> failed video" in page
    assert "1 with no uploader" in page and "waits for an admin to retry it" in page
    home = admin.get("/").content.decode()
    assert f'href="{failed_list}"' in home

    listed = admin.get(failed_list).content.decode()
    assert "Platform clip that stopped" in listed and fine.title not in listed and "ffprobe: bad atom" in listed
    assert "Only failed videos" in listed
    detail = admin.get(reverse("moderation:video_detail", args=[stopped.pk])).content.decode()
    assert reverse("moderation:video_retry", args=[stopped.pk]) in detail
    # A moderator's failed filter shows what is open to them only (nor does the dashboard open to them).
    assert "Platform clip that stopped" not in moderator.get(failed_list).content.decode()
    assert moderator.get(reverse("moderation:ops_dashboard")).status_code == 403


def test_the_dashboard_counts_read_in_the_singular_for_one(client_as, policy_version):
    """Walked: a quiet day read "1 model decisions and 1 human reviews in the last 24 h", "1 open items"."""
    decision = DecisionFactory(policy_version=policy_version)
    ReviewFactory(task=ReviewTaskFactory(decision=decision))
    ReviewTaskFactory(decision=DecisionFactory(policy_version=policy_version))
    Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - timedelta(days=3))
    now = timezone.now()
    ReviewTask.objects.filter(decision=decision).update(
        status="done", completed_at=now, deadline=now + timedelta(hours=1)
    )
    page = client_as("admin").get("/ops/").content.decode()
    assert "<strong>1</strong> model decision and <strong>1</strong> human review in the last 24 h" in page
    assert "<strong>1</strong> open item," in page
    assert "of 1 item done in 14 days" in page


def test_the_backlog_charts_name_queues_as_the_table_beside_them_does(client_as, policy_version):
    """Walked: the backlog charts' bars read "tags" and "default" (slugs) beside a table reading "Content tags" and
    "Default"; they now use the queues' names, as every screen does."""
    TagTaskFactory(decision__policy_version=policy_version)
    ReviewTaskFactory(decision=DecisionFactory(policy_version=policy_version))
    backlog = ops_dashboard()["backlog"]
    assert [bar["label"] for bar in backlog["chart"].bars] == [r["queue"].name for r in backlog["rows"]]
    page = client_as("admin").get("/ops/").content.decode()
    assert "<title>Content tags: 1.0</title>" in page and "<title>tags: 1.0</title>" not in page


def test_the_hourly_throughput_reads_its_hours_as_month_day_and_time(client_as):
    """Walked: the throughput chart's axis read "03 04h" (a day of the month and an hour, unnamed); the hours now
    read as the daily charts read their days, "12-03 04:00"."""
    from moderation.ops.selectors import ops_throughput

    now = timezone.now()
    rows = ops_throughput(now=now)["rows"]
    assert rows[-1][0] == f"{now:%m-%d %H}:00"
    assert rows[0][0] == f"{now - timedelta(hours=23):%m-%d %H}:00"


def test_the_throughput_chart_spans_the_24_hours_its_words_name(client_as, policy_version):
    """Walked: "… in the last 24 h" sat above a chart of 48 hours whose last labelled tick was ~7 h before now.
    The chart now plots the same 24 hours as the totals, says so under it, and labels the current hour."""
    import re

    recent = DecisionFactory(policy_version=policy_version)
    older = DecisionFactory(policy_version=policy_version)
    Decision.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=30))
    now = timezone.now()
    page = client_as("admin").get("/ops/").content.decode()
    section = page[page.index('id="ops-throughput"') : page.index('id="ops-backlog"')]
    assert "<strong>1</strong> model decision and <strong>0</strong> human reviews in the last 24 h" in section
    first, last = f"{now - timedelta(hours=23):%m-%d %H}:00", f"{now:%m-%d %H}:00"
    assert f"Hours of the last 24 h (UTC), {first} to {last}, this hour so far" in section
    hours = re.findall(r"<tr><td>(\d\d-\d\d \d\d:00)</td>", section)
    assert len(hours) == 24 and hours[0] == first and hours[-1] == last
    ticks = re.findall(r'class="xlab[^"]*">([^<]+)</text>', section)
    assert ticks[-1] == last and 'class="xlab xlab-end">' in section
    assert recent.pk


@pytest.fixture
def quiet_broker():  # type: ignore[no-untyped-def]
    """No worker heartbeats and empty queues in this run's Redis, before and after."""
    from workbench.health import HEARTBEAT_PREFIX, _redis
    from workbench.queues import TaskQueue

    client = _redis()

    def clear() -> None:
        for key in client.scan_iter(match=HEARTBEAT_PREFIX + "*"):
            client.delete(key)
        client.delete(*[q.value for q in TaskQueue])

    clear()
    yield client
    clear()


def test_dashboard_names_each_queue_no_worker_consumes_and_what_waits_there(client_as, quiet_broker):
    """A CPU host without the GPU override, or `--scale worker-infer=0`: the infer queue's tasks wait in Redis.
    The operator reads which queue has no worker and how many tasks wait, and the line goes when one beats."""
    from workbench.celery import app
    from workbench.health import worker_heartbeat

    worker_heartbeat(hostname="media@a", queues=["media", "default"])
    app.send_task("training.tasks.run_training_job", args=[0], queue="train")
    app.send_task("training.tasks.run_training_job", args=[0], queue="train")

    html = client_as("admin").get("/ops/").content.decode()
    assert "<strong>No worker on queue infer</strong>" in html and "<strong>No worker on queue train</strong>" in html
    assert "its 2 waiting tasks run when one starts; nothing is lost meanwhile" in html
    assert "No worker on queue media" not in html and "No worker on queue default" not in html
    assert "<td>media@a</td>" in html

    worker_heartbeat(hostname="train@gpu1", queues=["train"])
    html = client_as("admin").get("/ops/").content.decode()
    assert "No worker on queue train" not in html and "<td>train@gpu1</td><td>2</td>" in html
    assert "<strong>No worker on queue infer</strong>" in html


def test_dashboard_says_the_broker_is_down_instead_of_failing(client_as, settings):
    settings.REDIS_CLIENT_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    page = client_as("admin").get("/ops/")
    assert page.status_code == 200
    assert 'id="ops-workers-broker"' in page.content.decode()
