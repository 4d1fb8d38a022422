"""The impact preview is kept per (draft content, active version, model, sample size): opening the version page or
its publish step again shows it, with when it was computed, instead of re-running the model on the whole sample."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from moderation.inference.impact import impact_content_hash, policy_impact_preview, policy_impact_preview_kept
from moderation.inference.models import ImpactPreviewRun
from moderation.policies.services import policy_version_create_draft, policy_version_publish
from tests.moderation.policies.test_impact_preview import _decided, _draft_with_keyword

pytestmark = pytest.mark.django_db


def test_a_repeat_shows_the_kept_run_until_the_editor_runs_it_again(policy_version, make_user):
    first = _decided(policy_version, "ping me on signal for the real price")
    editor = make_user("policy_editor")
    draft = _draft_with_keyword(policy_version, editor, "signal")

    ran = policy_impact_preview(draft=draft, user=editor)
    assert not ran.reused and ran.computed_at is not None and [f.video_id for f in ran.flips] == [first.pk]
    ImpactPreviewRun.objects.update(computed_at=ran.computed_at - timedelta(hours=2))
    assert policy_impact_preview(draft=draft, user=editor).computed_ago == "2\xa0hours ago"
    ran.computed_at = ran.computed_at - timedelta(hours=2)

    second = _decided(policy_version, "signal me for a deal")  # would flip too, were the model run again
    again = policy_impact_preview(draft=draft, user=editor)
    assert again.reused and again.computed_at == ran.computed_at
    assert [f.video_id for f in again.flips] == [first.pk] and again.checked == 1
    assert again.decided_since  # the page says its sample is no longer the latest

    fresh = policy_impact_preview(draft=draft, user=editor, refresh=True)
    assert not fresh.reused and fresh.computed_at is not None and fresh.computed_at > ran.computed_at
    assert sorted(f.video_id for f in fresh.flips) == sorted([first.pk, second.pk]) and not fresh.decided_since
    assert ImpactPreviewRun.objects.count() == 1  # run again in place


def test_another_draft_content_or_active_version_is_never_shown_anothers_run(policy_version, make_user):
    _decided(policy_version, "ping me on signal, or wickr")
    editor = make_user("policy_editor")
    signal = _draft_with_keyword(policy_version, editor, "signal")
    assert not policy_impact_preview(draft=signal, user=editor).reused
    wickr = _draft_with_keyword(policy_version, editor, "wickr")
    assert not policy_impact_preview(draft=wickr, user=editor).reused  # other content: its own run
    assert policy_impact_preview(draft=signal, user=editor).reused
    assert policy_impact_preview(draft=signal, user=editor, sample_size=10).reused is False  # another sample

    policy_version_publish(version=wickr, by=editor)  # the comparison's other side changed
    after = policy_impact_preview(draft=signal, user=editor)
    assert not after.reused and after.active == wickr


def _same_content_published(policy_version, editor):  # type: ignore[no-untyped-def]
    """Another version with the active one's taxonomy and settings, published: a copy made active (a rollback's)."""
    copy = policy_version_create_draft(policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=editor)
    return policy_version_publish(version=copy, by=editor)


def test_a_run_computed_against_an_active_version_replaced_since_is_never_shown_as_current(
    policy_version, make_user, client_as
):
    """The content hash alone matched a run computed against the version active before, when the one active now has
    the same taxonomy and settings: the publish step showed it as "v1 → v3", and said nothing of a newer sample."""
    _decided(policy_version, "ping me on signal")
    editor = make_user("policy_editor")
    draft = _draft_with_keyword(policy_version, editor, "signal")
    assert not policy_impact_preview(draft=draft, user=editor).reused
    assert policy_impact_preview_kept(draft=draft, user=editor) is not None

    now_active = _same_content_published(policy_version, editor)
    assert impact_content_hash(draft=draft, active=now_active) == impact_content_hash(
        draft=draft, active=policy_version
    )
    assert policy_impact_preview_kept(draft=draft, user=editor) is None
    step = client_as("policy_editor").get(reverse("moderation:policy_version", args=[draft.pk]), {"confirm": "publish"})
    box = step.content.decode()
    box = box[box.index('<div id="impact-result"') :]
    assert 'hx-trigger="load"' in box[: box.index(">")] and "shown again" not in box  # a fresh run, loaded after

    shown = policy_impact_preview(draft=draft, user=editor)
    assert not shown.reused and shown.active == now_active
    assert list(ImpactPreviewRun.objects.values_list("active_id", flat=True)) == [now_active.pk]  # kept in place
    assert policy_impact_preview(draft=draft, user=editor).reused


def test_the_daily_purge_deletes_runs_whose_active_version_was_replaced(policy_version, make_user):
    """They can never be shown again, yet waited out IMPACT_PREVIEW_RETENTION_DAYS (30 days by default)."""
    from moderation.inference.tasks import purge_impact_previews

    _decided(policy_version, "ping me on signal, or wickr")
    editor = make_user("policy_editor")
    signal = _draft_with_keyword(policy_version, editor, "signal")
    wickr = _draft_with_keyword(policy_version, editor, "wickr")
    policy_impact_preview(draft=signal, user=editor)
    policy_impact_preview(draft=wickr, user=editor)
    assert purge_impact_previews.run() == 0  # computed today against the active version: kept

    now_active = _same_content_published(policy_version, editor)
    policy_impact_preview(draft=wickr, user=editor)  # run again against the version active now
    assert purge_impact_previews.run() == 1
    assert list(ImpactPreviewRun.objects.values_list("draft_id", "active_id")) == [(wickr.pk, now_active.pk)]


def test_the_publish_step_draws_the_kept_preview_in_the_page_with_when_it_was_computed(
    policy_version, make_user, client_as
):
    """Walked: each opening of the publish step loaded the preview after the page and ran the model again."""
    _decided(policy_version, "ping me on signal")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    editor = client_as("policy_editor")
    impact = reverse("moderation:policy_version_impact", args=[draft.pk])
    step = reverse("moderation:policy_version", args=[draft.pk])

    first = editor.get(step, {"confirm": "publish"}).content.decode()
    assert re.search(
        rf'<div id="impact-result" class="impact-pending" hx-post="{impact}" hx-vals=\'{{"n": "\d+"}}\' hx-trigger="load"',
        first,
    )
    ran = editor.post(impact, {"n": "200"}, HTTP_HX_REQUEST="true").content.decode()  # what the step loads
    assert "Computed <time" in ran and "UTC</time> (just now)." in ran and "shown again" not in ran

    again = editor.get(step, {"confirm": "publish"}).content.decode()
    box = again[again.index('<div id="impact-result"') : again.index("</section>", again.index('id="impact-result"'))]
    assert box.startswith('<div id="impact-result" class="impact-pending">')  # the same box, nothing loaded after
    assert "<strong>1</strong> of 1 recent item" in box
    assert "shown again without re-running the model" in box and 'hx-post="' + impact in box
    assert "Running the impact preview" not in box

    # "Run again" (a POST; a minute after the last run) runs the model and says so.
    ImpactPreviewRun.objects.update(computed_at=timezone.now() - timedelta(minutes=2))
    rerun = editor.post(impact, {"n": "200"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Computed <time" in rerun and "shown again" not in rerun


def test_the_version_page_draws_the_kept_preview_too_and_runs_nothing_when_none_is_kept(
    policy_version, make_user, client_as
):
    """Walked: outside the publish step, the version's page showed an empty box under "Preview impact" even with a
    preview kept for the draft: the editor clicked to see an answer the workbench had already."""
    _decided(policy_version, "ping me on signal")
    draft = _draft_with_keyword(policy_version, make_user("policy_editor"), "signal")
    editor = client_as("policy_editor")
    page_url = reverse("moderation:policy_version", args=[draft.pk])

    page = editor.get(page_url).content.decode()
    box = page[page.index('<div id="impact-result"') : page.index("</section>", page.index('id="impact-result"'))]
    assert box == '<div id="impact-result"></div>\n'  # none kept: nothing runs by itself here ("Preview impact" does)
    assert not ImpactPreviewRun.objects.exists()

    ran = policy_impact_preview(draft=draft, user=make_user("admin"))
    ImpactPreviewRun.objects.update(computed_at=ran.computed_at - timedelta(minutes=3))
    page = editor.get(page_url).content.decode()
    box = page[page.index('<div id="impact-result"') : page.index("</section>", page.index('id="impact-result"'))]
    assert re.sub(r">\s+<", "><", box).startswith('<div id="impact-result"><div class="impact">')
    assert "hx-trigger" not in box
    assert "<strong>1</strong> of 1 recent item" in box
    assert "(3\xa0minutes ago), shown again without re-running the model" in box
    assert '<button type="submit" class="secondary" id="impact-run">Run again</button>' in box
    assert ImpactPreviewRun.objects.get().computed_at == ran.computed_at - timedelta(minutes=3)  # not run again

    published = editor.get(reverse("moderation:policy_version", args=[policy_version.pk])).content.decode()
    assert 'id="impact-result"' not in published  # the active version has nothing to preview


def test_kept_runs_of_published_or_old_drafts_are_deleted_by_a_daily_beat_task(policy_version, make_user, settings):
    """Kept runs were never deleted: every content a draft had, and every published draft's, stayed for good."""
    from celery import Celery
    from django.utils import timezone

    from moderation.inference.tasks import purge_impact_previews
    from workbench.queues import TASK_ROUTES, TaskQueue, configure_routing

    settings.IMPACT_PREVIEW_RETENTION_DAYS = 5
    _decided(policy_version, "ping me on signal, or wickr, or threema")
    editor = make_user("policy_editor")
    published = _draft_with_keyword(policy_version, editor, "signal")
    old = _draft_with_keyword(policy_version, editor, "wickr")
    fresh = _draft_with_keyword(policy_version, editor, "threema")
    for draft in (published, old, fresh):
        policy_impact_preview(draft=draft, user=editor)
    ImpactPreviewRun.objects.filter(draft=old).update(computed_at=timezone.now() - timedelta(days=5, minutes=1))
    ImpactPreviewRun.objects.filter(draft=fresh).update(computed_at=timezone.now() - timedelta(days=4, hours=23))
    published.status = published.Status.PUBLISHED
    published.save(update_fields=["status"])

    assert purge_impact_previews.run() == 2
    assert list(ImpactPreviewRun.objects.values_list("draft_id", flat=True)) == [fresh.pk]
    assert policy_impact_preview(draft=fresh, user=editor).reused  # still shown again
    assert purge_impact_previews.run() == 0  # idempotent

    name = "moderation.inference.tasks.purge_impact_previews"
    assert TASK_ROUTES[name] is TaskQueue.DEFAULT
    app = Celery("routing-check", set_as_current=False)  # never the app shared tasks send through
    configure_routing(app)
    assert [e["schedule"] for e in app.conf.beat_schedule.values() if e["task"] == name] == [86400.0]
