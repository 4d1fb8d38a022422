"""Running a draft's impact preview is a POST: "Run again" was a GET (``?refresh=1``) that ran the model on up to
2,000 items each time it was opened, followed or repeated. A GET now only shows the kept run; a POST is
CSRF-checked, joins a run under way instead of starting a second, and a repeat within a minute with nothing decided
since shows the kept run. The Django test client on the real database; the run under way is a real advisory lock
held by another connection."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from moderation.inference.impact import _run_key, _run_lock_name
from moderation.inference.models import ImpactPreviewRun
from moderation.policies.models import PolicyVersion
from tests.moderation.policies.test_impact_preview import _decided, _draft_with_keyword

pytestmark = pytest.mark.django_db


def _url(draft: PolicyVersion) -> str:
    return reverse("moderation:policy_version_impact", args=[draft.pk])


@contextlib.contextmanager
def _run_under_way_elsewhere(draft: PolicyVersion, active: PolicyVersion, n: int) -> Iterator[None]:
    """Another request's run of ``draft``'s preview: its lock, held by another database connection."""
    name = _run_lock_name(_run_key(draft, active, n))
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [name])
                held.set()
                release.wait(30)
                cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [name])
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def test_a_get_shows_the_kept_run_and_never_runs_the_model(policy_version, make_user, client_as):
    _decided(policy_version, "ping me on signal for the real price")
    editor = client_as("policy_editor")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    url = _url(draft)

    for params, htmx in (({}, False), ({"refresh": "1", "n": "200"}, False), ({"refresh": "1"}, True)):
        page = editor.get(url, params, **({"HTTP_HX_REQUEST": "true"} if htmx else {})).content.decode()
        assert "Not computed yet" in page and 'method="post"' in page and "csrfmiddlewaretoken" in page
    assert not ImpactPreviewRun.objects.exists()

    ran = editor.post(url, {"n": "200"})  # without JavaScript: run, then back to the page (a reload is a GET)
    assert ran.status_code == 302 and ran["Location"] == f"{url}?n=200"
    run = ImpactPreviewRun.objects.get()
    page = editor.get(ran["Location"]).content.decode()
    assert "<strong>1</strong> of 1 recent item" in page and 'hx-post="' in page and "Run again" in page

    _decided(policy_version, "signal me for a deal")  # a fresh run would include it
    editor.get(url, {"refresh": "1", "n": "200"})  # the old "Run again" link: shown, not run
    assert ImpactPreviewRun.objects.get().computed_at == run.computed_at


def test_running_it_needs_the_csrf_token(policy_version, make_user):
    _decided(policy_version, "ping me on signal for the real price")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("policy_editor"))
    assert client.post(_url(draft), {"n": "50"}, HTTP_HX_REQUEST="true").status_code == 403
    assert not ImpactPreviewRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_click_while_a_run_is_under_way_waits_for_it_instead_of_running_twice(
    policy_version, make_user, client_as
):
    _decided(policy_version, "ping me on signal for the real price")
    editor = client_as("policy_editor")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    url = _url(draft)

    with _run_under_way_elsewhere(draft, policy_version, 50):
        joined = editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true")
        html = joined.content.decode()
        assert joined.status_code == 200 and "<html" not in html
        assert "being computed now" in html and 'hx-trigger="every 2s"' in html  # it asks again until the run lands
        assert not ImpactPreviewRun.objects.exists()  # the second click ran nothing
        shown = editor.get(url, {"n": "50"}, HTTP_HX_REQUEST="true").content.decode()
        assert "being computed now" in shown and "Run the preview" not in shown
        plain = editor.post(url, {"n": "50"}, follow=True).content.decode()  # without JavaScript: told, not run
        assert "being computed now" in plain and not ImpactPreviewRun.objects.exists()

    html = editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true").content.decode()  # that run ended: this one runs
    assert "<strong>1</strong> of 1 recent item" in html and "every 2s" not in html
    assert ImpactPreviewRun.objects.count() == 1


def test_a_repeat_within_a_minute_with_nothing_decided_since_shows_the_kept_run(policy_version, make_user, client_as):
    _decided(policy_version, "ping me on signal for the real price")
    editor = client_as("policy_editor")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    url = _url(draft)

    editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true")
    first = ImpactPreviewRun.objects.get().computed_at
    again = editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Not run again: it was computed just now and no item was decided under this policy since" in again
    assert ImpactPreviewRun.objects.get().computed_at == first

    _decided(policy_version, "signal me for a deal")  # something new to include: run again at once
    html = editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<strong>2</strong> of 2 recent items" in html and "Not run again" not in html
    second = ImpactPreviewRun.objects.get().computed_at
    assert second > first

    ImpactPreviewRun.objects.update(computed_at=second - timedelta(minutes=2))  # a minute on: run again
    editor.post(url, {"n": "50"}, HTTP_HX_REQUEST="true")
    assert ImpactPreviewRun.objects.get().computed_at > second
