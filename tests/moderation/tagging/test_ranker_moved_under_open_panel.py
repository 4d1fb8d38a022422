"""A tagger's answers name the ranker whose suggestions they saw. Before, a ranker retrained (the hourly beat, the
ranker page) while a tagger had a video's tags panel open re-scored its suggestions, and the save recorded every
accept and reject as answers to the new ranker, with its scores: the ranker's training data credited a ranking the
tagger never saw. The panel now sends the ranker it was drawn with, and the events keep its name and its score;
the tagger's save goes through as they made it, with nothing to redo."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from moderation.tagging import services
from moderation.tagging.models import TagEvent, TagRanker, TagSuggestion, VideoTag
from tests.factories import TagFactory
from tests.moderation.tagging.test_ranker_training_runs import _events, _pending_suggestion

pytestmark = pytest.mark.django_db


def _panel(client: Any, video_id: int) -> str:
    return client.get(reverse("moderation:tag_panel", args=[video_id])).content.decode()


def _submit(client: Any, video_id: int, *, kept: int, shown: list[int], ranked_with: str | None) -> Any:
    data: dict[str, Any] = {"tag": [kept], "shown": shown, "seen_sent": "1"}
    if ranked_with is not None:
        data["ranked_with"] = ranked_with
    return client.post(reverse("moderation:tag_submit", args=[video_id]), data, HTTP_HX_REQUEST="true")


def test_a_save_after_a_retrain_names_the_ranker_and_scores_the_tagger_saw(client_as: Any) -> None:
    _events(30)
    kept = _pending_suggestion()
    video = kept.video
    features = dict(kept.features, embedding=0.3, text_any=1.0)
    rejected = TagSuggestion.objects.create(video=video, tag=TagFactory(), score=0.5, features=features)
    services.tag_ranker_train(min_events=20)
    v1 = TagRanker.objects.get(version=1)
    seen = {s.tag_id: s.score for s in TagSuggestion.objects.filter(video=video)}
    assert all(s.ranker_id == v1.pk for s in TagSuggestion.objects.filter(video=video))
    tagger = client_as("admin")
    panel = _panel(tagger, video.pk)
    assert f'name="ranked_with" value="{v1.pk}"' in panel and "Ranked by ranker v1" in panel
    drawn = re.search(r'name="ranked_with" value="(\d*)"', panel)
    assert drawn is not None

    # While the panel is open, the ranker learns from more answers: v2 re-scores the video's suggestions.
    _events(30, seed=7)
    services.tag_ranker_train(min_events=20)
    v2 = TagRanker.objects.get(version=2)
    now = {s.tag_id: s for s in TagSuggestion.objects.filter(video=video)}
    assert now[kept.tag_id].ranker_id == v2.pk and now[kept.tag_id].score != pytest.approx(seen[kept.tag_id])

    response = _submit(tagger, video.pk, kept=kept.tag_id, shown=[kept.tag_id, rejected.tag_id], ranked_with=drawn[1])

    assert response.status_code == 200 and "Tags saved: 1 accepted, 1 rejected, 0 added." in response.content.decode()
    assert set(VideoTag.objects.filter(video=video).values_list("tag_id", flat=True)) == {kept.tag_id}
    events = {e.tag_id: e for e in TagEvent.objects.filter(video=video)}
    for tag_id, action in ((kept.tag_id, "accept"), (rejected.tag_id, "reject")):
        event = events[tag_id]
        assert (event.action, event.ranker, event.ranked_by) == (action, v1, "tag-ranker v1")
        assert event.score == pytest.approx(seen[tag_id])  # the number on the chip the tagger answered
    # The stored suggestions stay the active ranker's: what the next panel shows.
    assert TagSuggestion.objects.get(video=video, tag=kept.tag).ranker == v2


def test_a_panel_drawn_before_any_learned_ranker_is_answered_as_the_weighted_sum(client_as: Any) -> None:
    _events(30)
    shown = _pending_suggestion()  # no learned ranker yet: the weighted sum ordered it
    tagger = client_as("admin")
    assert 'name="ranked_with" value=""' in _panel(tagger, shown.video_id)
    services.tag_ranker_train(min_events=20)  # v1 re-scores it while the panel is open
    assert TagSuggestion.objects.get(pk=shown.pk).ranker is not None

    _submit(tagger, shown.video_id, kept=shown.tag_id, shown=[shown.tag_id], ranked_with="")

    event = TagEvent.objects.get(video=shown.video)
    assert (event.action, event.ranker, event.ranked_by) == ("accept", None, "weighted-sum")


def test_a_form_without_the_field_names_the_suggestions_own_ranker(client_as: Any) -> None:
    """A panel drawn before this field existed (or a client that leaves it out) is read as before."""
    _events(30)
    shown = _pending_suggestion()
    services.tag_ranker_train(min_events=20)
    _submit(client_as("admin"), shown.video_id, kept=shown.tag_id, shown=[shown.tag_id], ranked_with=None)
    event = TagEvent.objects.get(video=shown.video)
    assert event.ranked_by == "tag-ranker v1"
