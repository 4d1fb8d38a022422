"""The tag ranker page lists the training runs and follows a running one: it said "reload in a few seconds" and
left the admin to guess, then followed only the retrain its own session asked for, and a failed run left no trace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.tagging import services
from moderation.tagging.models import TagRankerTraining
from moderation.tagging.tasks import train_tag_ranker
from tests.factories import TagEventFactory, UserFactory
from tests.moderation.tagging.test_ranker_training_runs import _events

pytestmark = pytest.mark.django_db


def _runs(html: str) -> str:
    return html.split('id="ranker-runs"')[1].split("</div>")[0]


def test_a_retrain_is_followed_until_it_ends_without_a_queued_line_outliving_it(
    client_as, django_capture_on_commit_callbacks
):
    admin = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = admin.post(reverse("moderation:tag_ranker_train"), follow=True)
    assert len(queued) == 1  # the task is sent once the click's transaction commits
    run = TagRankerTraining.objects.get()
    html = page.content.decode()
    assert "queued" not in html.split('id="ranker-runs"')[0]  # no flash message that would outlive the run
    table = _runs(html)
    assert f'data-run="{run.pk}" data-run-status="queued"' in table
    assert 'hx-trigger="every 2s"' in html.split('id="ranker-runs"')[1][:200] and "?part=runs" in html
    assert "waiting for a worker on the default queue" in table

    polled = admin.get(reverse("moderation:tag_ranker") + "?part=runs", HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "HX-Refresh" not in polled

    train_tag_ranker.apply(args=[run.pk])  # the worker's part: too few events
    polled = admin.get(reverse("moderation:tag_ranker") + "?part=runs", HTTP_HX_REQUEST="true")
    assert polled["HX-Refresh"] == "true"  # the page reloads with the outcome
    html = admin.get(reverse("moderation:tag_ranker")).content.decode()
    table = _runs(html)
    assert 'data-run-status="skipped"' in table and "skipped: 0 usable events; the learned ranker needs 20" in table
    assert "hx-get" not in html.split('id="ranker-runs"')[1][:200]
    assert 'data-run-status="queued"' not in table


def test_the_history_shows_who_started_each_run_its_score_its_ranker_and_a_failure_in_words(client_as):
    _events(30)
    services.tag_ranker_train(min_events=20, trigger="command")
    _events(1, seed=3)  # reviewers answered since: the beat's tick trains
    train_tag_ranker.apply(task_id="beat-1")
    admin = UserFactory(role="admin", username="ada")
    services.tag_ranker_train(user=admin, min_events=20, trigger="page")
    TagEventFactory(action="accept", features={"prior": "high"})
    failed = services.tag_ranker_train(min_events=20)

    html = client_as("moderator").get(reverse("moderation:tag_ranker")).content.decode()

    table = _runs(html)
    assert table.count("data-run=") == 4
    assert "manage.py train_tag_ranker" in table and "beat (hourly)" in table and "ada (the ranker page)" in table
    assert table.count('data-run-status="done"') == 3 and "0.400" in table and "on 6 videos" in table
    assert ">v3" in table and "active" in table
    error = table.split(f'data-run-detail="{failed.pk}"')[1].split("</tr>")[0]
    assert 'role="alert"' in error
    assert "failed: Tag event" in error and "holds a feature “prior” that is not a number" in error
    # The versions, and the way back to an earlier one (admins only: a moderator reads the page).
    assert 'data-ranker="1"' in html and 'data-ranker="3"' in html and "data-activate" not in html
    assert "Make v2 active again" in client_as("admin").get(reverse("moderation:tag_ranker")).content.decode()


def test_a_run_no_worker_took_stops_the_polling_and_says_why(client_as):
    admin = client_as("admin")
    run = services.tag_ranker_training_request(trigger="page", by=UserFactory(role="admin"))
    late = timezone.now() - TagRankerTraining.RESEND_AFTER - timedelta(seconds=1)
    TagRankerTraining.objects.filter(pk=run.pk).update(sent_at=late)

    polled = admin.get(reverse("moderation:tag_ranker") + "?part=runs", HTTP_HX_REQUEST="true")

    assert polled["HX-Refresh"] == "true"
    html = admin.get(reverse("moderation:tag_ranker")).content.decode()
    assert "no worker has taken it since: the default-queue worker may be down" in _runs(html)
    assert "hx-get" not in html.split('id="ranker-runs"')[1][:200]
