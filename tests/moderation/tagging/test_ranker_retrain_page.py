"""The tag ranker page follows a retrain it asked for: it said "reload in a few seconds" and left the admin to guess."""

from __future__ import annotations

import pytest
from django.urls import reverse

from moderation.tagging import services
from moderation.tagging.models import TagRanker
from moderation.tagging.views import RANKER_RETRAIN_KEY, RANKER_RETRAIN_PATIENCE_S

pytestmark = pytest.mark.django_db


def _retrain_line(html: str) -> str:
    return html.split('id="ranker-retrain"')[1].split("</div>")[0]


def test_a_retrain_is_followed_until_the_new_ranker_is_shown_once(client_as, django_capture_on_commit_callbacks):
    admin = client_as("admin")
    before = services.tag_ranker_train()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        page = admin.post(reverse("moderation:tag_ranker_train"), follow=True)
    assert len(queued) == 1  # the task is sent once the click's transaction commits
    html = page.content.decode()
    assert "reload in a few seconds" not in html
    line = _retrain_line(html)
    assert 'data-retrain-state="running"' in line and 'hx-trigger="every 2s"' in line and "?part=retrain" in line

    polled = admin.get(reverse("moderation:tag_ranker") + "?part=retrain", HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "HX-Refresh" not in polled
    assert 'data-retrain-state="running"' in polled.content.decode()

    trained = services.tag_ranker_train(user=None)  # what the worker runs
    assert trained.pk > before.pk
    polled = admin.get(reverse("moderation:tag_ranker") + "?part=retrain", HTTP_HX_REQUEST="true")
    assert polled["HX-Refresh"] == "true"
    line = _retrain_line(admin.get(reverse("moderation:tag_ranker")).content.decode())
    assert f"Retrained: ranker #{trained.pk} (Weighted sum" in line and "now active" in line
    assert "hx-get" not in line
    # Said once: the page reloaded shows the ranker, not the retrain again.
    assert "data-retrain-state" not in admin.get(reverse("moderation:tag_ranker")).content.decode()


def test_a_retrain_that_never_finishes_says_so_instead_of_polling_forever(
    client_as, django_capture_on_commit_callbacks
):
    admin = client_as("admin")
    with django_capture_on_commit_callbacks(execute=False):
        admin.post(reverse("moderation:tag_ranker_train"))
    session = admin.session
    session[RANKER_RETRAIN_KEY] = {
        **session[RANKER_RETRAIN_KEY],
        "at": session[RANKER_RETRAIN_KEY]["at"] - RANKER_RETRAIN_PATIENCE_S - 1,
    }
    session.save()
    polled = admin.get(reverse("moderation:tag_ranker") + "?part=retrain", HTTP_HX_REQUEST="true")
    assert polled["HX-Refresh"] == "true"
    line = _retrain_line(admin.get(reverse("moderation:tag_ranker")).content.decode())
    assert 'data-retrain-state="late"' in line and "The active ranker is unchanged." in line and "hx-get" not in line
    assert not TagRanker.objects.exists()
