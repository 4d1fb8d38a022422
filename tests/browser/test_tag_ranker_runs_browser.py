"""The tag ranker's training runs in Chromium at 1440x900 (screenshots in /work/shots/<worktree>/): the history of
runs from every path with a failure said in words, an earlier version made active again, and the tag screen saying
which ranker version ranked the chips."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser.conftest import CHROMIUM
from tests.browser.signin import shots_dir, sign_in
from tests.browser.test_accessibility import _violations

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


@pytest.mark.django_db(transaction=True)
def test_the_runs_history_says_each_outcome_and_an_earlier_version_comes_back(page, make_user):
    from moderation.tagging.models import TagRanker, TagRankerTraining
    from moderation.tagging.services import tag_ranker_train
    from moderation.tagging.tasks import train_tag_ranker
    from tests.factories import TagEventFactory
    from tests.moderation.tagging.test_ranker_training_runs import _events

    admin = make_user("admin")
    tag_ranker_train(min_events=20)  # before any event: skipped
    _events(30, seed=1)
    tag_ranker_train(min_events=20)  # v1, from the command
    _events(30, seed=2)
    train_tag_ranker.apply(task_id="beat-1")  # v2, from the beat
    bad = TagEventFactory(action="accept", features={"prior": "high"})
    tag_ranker_train(user=admin, min_events=20, trigger="page")  # fails on the bad event
    sign_in(page, admin.username, screen=True)

    page.goto(reverse("moderation:tag_ranker") + "#ranker-runs")
    runs = page.locator("#ranker-runs")
    assert runs.locator("[data-run]").count() == 4
    failed = TagRankerTraining.objects.get(status="failed")
    error = page.locator(f'[data-run-detail="{failed.pk}"] [data-run-error]')
    assert f"Tag event {bad.pk} holds a feature “prior” that is not a number" in error.inner_text()
    assert "0 usable events; the learned ranker needs 20" in runs.inner_text()
    assert "beat (hourly)" in runs.inner_text() and "manage.py train_tag_ranker" in runs.inner_text()
    assert _violations(page) == []
    page.locator("#runs-heading").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "ranker-runs-history.png"))
    page.screenshot(path=str(shots_dir() / "ranker-runs-page-full.png"), full_page=True)

    with page.expect_navigation():
        page.click("[data-activate='1']")
    assert "Ranker v1 is active again" in page.inner_text(".messages")
    assert TagRanker.objects.get(is_active=True).version == 1
    assert "v1 Logistic regression" in page.inner_text("[data-ranker-kind]")
    page.screenshot(path=str(shots_dir() / "ranker-rolled-back-to-v1.png"))


@pytest.mark.django_db(transaction=True)
def test_the_tag_screen_says_which_ranker_version_ranked_its_chips(page, make_user, policy_version):
    from moderation.review.services import review_claim_next
    from moderation.tagging.models import TagSuggestion
    from moderation.tagging.services import tag_ranker_train, tag_set_default
    from tests.factories import TagTaskFactory
    from tests.moderation.tagging.test_ranker_training_runs import _events

    _events(30)
    admin = make_user("admin")
    task = TagTaskFactory(
        decision__policy_version=policy_version, suggestions=[("美食", 0.93), ("火锅", 0.71), ("旅游", 0.22)]
    )
    ranker = tag_ranker_train(min_events=20).ranker  # re-scores the untagged video's suggestions
    assert set(TagSuggestion.objects.filter(video=task.decision.video).values_list("ranker", flat=True)) == {ranker.pk}
    assert review_claim_next(user=admin, queue=task.queue) == task
    sign_in(page, admin.username, screen=True)

    page.goto(reverse("moderation:tag_task", args=[task.pk]) + f"?set={tag_set_default().slug}")
    said = page.locator("#tags-panel [data-ranked-by]").inner_text()
    assert said == "Ranked by ranker v1 (learned from 180 reviewer events)."
    page.locator("#tags-panel").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir() / "tag-panel-ranked-by-v1.png"))
    page.goto(reverse("moderation:tag_queue"))
    assert "New suggestions are ranked by ranker v1" in page.inner_text("[data-ranked-by]")
    page.screenshot(path=str(shots_dir() / "tag-queue-ranked-by-v1.png"))


@pytest.mark.django_db(transaction=True)
def test_a_quiet_beat_is_one_row_and_the_command_says_who_ran_it(page, make_user, monkeypatch):
    from django.core.management import call_command

    from moderation.tagging import ranking
    from moderation.tagging.models import TagRankerTraining
    from moderation.tagging.services import tag_ranker_train
    from moderation.tagging.tasks import train_tag_ranker
    from tests.moderation.tagging.test_ranker_training_runs import _events

    monkeypatch.setenv("LOGNAME", "deploy")
    admin = make_user("admin")
    _events(30)
    train_tag_ranker.apply(task_id="beat-1")  # v1
    for tick in ("beat-2", "beat-3", "beat-4"):  # three quiet hours: one row
        train_tag_ranker.apply(task_id=tick)
    call_command("train_tag_ranker", "--min-events", "20", "--by", admin.username, stdout=StringIO())
    call_command("train_tag_ranker", "--min-events", "20", stdout=StringIO())

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ranking.np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(ranking, "fit_linear", fails)
    failed = tag_ranker_train(min_events=20)  # an unexpected error: one sentence, nothing changed
    sign_in(page, admin.username, screen=True)

    page.goto(reverse("moderation:tag_ranker"))
    runs = page.locator("#ranker-runs")
    assert runs.locator("[data-run]").count() == 5
    assert runs.locator(f'[data-run-detail="{failed.pk}"] [data-run-error]').inner_text() == (
        "failed: Training failed (LinAlgError): SVD did not converge. The active ranker is unchanged; "
        "the traceback is in the worker's or the command's log."
    )
    quiet = TagRankerTraining.objects.get(status="unchanged")
    row = runs.locator(f'[data-run="{quiet.pk}"]').inner_text()
    assert "skipped: no new events" in row and "beat (hourly)" in row
    assert "Beat found nothing new 3 times" in runs.locator(f'[data-run-detail="{quiet.pk}"]').inner_text()
    assert f"{admin.username} (manage.py train_tag_ranker, OS user deploy)" in runs.inner_text()
    assert "manage.py train_tag_ranker (by deploy)" in runs.inner_text()
    assert "none new since run #" in page.inner_text("#ranker") and "retrained on demand" in runs.inner_text()
    assert _violations(page) == []
    page.screenshot(path=str(shots_dir() / "ranker-quiet-beat-and-command-operator.png"))
    page.screenshot(path=str(shots_dir() / "ranker-quiet-beat-page-full.png"), full_page=True)
