"""Every tag event names the ranker version that ranked the suggestion the reviewer answered ("tag-ranker v3", or
"weighted-sum"): the ranker's training data says what produced it, and the JSONL / Hugging Face / Label Studio exports
carry it (Label Studio's predictions said "tag-ranker" whichever version ranked them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.labelstudio import labelstudio_tag_task
from moderation.tagging import services
from moderation.tagging.models import TagEvent, TagRanker, TagSuggestion
from tests.factories import TagFactory, UserFactory, VideoFactory
from tests.moderation.tagging.test_ranker_training_runs import _events, _pending_suggestion
from training.tag_data import tag_event_rows, tag_events_export

pytestmark = pytest.mark.django_db


def test_a_tag_event_names_the_ranker_version_that_ranked_the_answered_suggestion_and_the_exports_carry_it(
    tmp_path: Path,
):
    _events(30)
    shown = _pending_suggestion()
    services.tag_ranker_train(min_events=20)  # v1 re-scores the pending suggestion
    video = shown.video
    rejected = TagSuggestion.objects.create(
        video=video, tag=TagFactory(), score=0.1, features=shown.features, ranker=TagRanker.objects.get(version=1)
    )
    searched = TagFactory()  # not suggested: found by search
    awaiting = VideoFactory()
    TagSuggestion.objects.create(video=awaiting, tag=TagFactory(), score=0.7, features={})  # before any learned ranker
    reviewer = UserFactory(role="moderator")

    # The awaiting videos' Label Studio pre-annotation names what ranked it.
    ls = labelstudio_tag_task(video=video, base_url="http://wb")
    assert ls["predictions"][0]["model_version"] == "tag-ranker v1"
    assert labelstudio_tag_task(video=awaiting, base_url="http://wb")["predictions"][0]["model_version"] == (
        "weighted-sum"
    )

    services.tags_review_submit(
        video_id=video.pk,
        user=reviewer,
        selected=[shown.tag_id, searched.pk],
        shown=[shown.tag_id, rejected.tag_id],
    )

    events = {e.tag_id: e for e in TagEvent.objects.filter(video=video)}
    v1 = TagRanker.objects.get(version=1)
    assert (events[shown.tag_id].action, events[shown.tag_id].ranker, events[shown.tag_id].ranked_by) == (
        "accept",
        v1,
        "tag-ranker v1",
    )
    assert (events[rejected.tag_id].ranker, events[rejected.tag_id].ranked_by) == (v1, "tag-ranker v1")
    assert (events[searched.pk].ranker, events[searched.pk].ranked_by) == (None, "")

    rows = {r["tag_id"]: r for r in tag_event_rows() if r["video_id"] == video.pk}
    assert (rows[shown.tag_id]["ranked_by"], rows[shown.tag_id]["ranker_version"]) == ("tag-ranker v1", 1)
    assert (rows[searched.pk]["ranked_by"], rows[searched.pk]["ranker_version"]) == ("", None)
    tag_events_export(folder=tmp_path / "ds", hf=True)
    line = next(
        json.loads(x)
        for x in (tmp_path / "ds" / "train.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(x)["event_id"] == events[shown.tag_id].pk
    )
    assert (line["ranked_by"], line["ranker_version"]) == ("tag-ranker v1", 1)
    from datasets import load_from_disk

    hf = load_from_disk(str(tmp_path / "ds" / "hf"))["train"]
    assert {"ranked_by", "ranker_version"} <= set(hf.column_names)
    assert "tag-ranker v1" in hf["ranked_by"]
    reviewed = labelstudio_tag_task(video=video, base_url="http://wb")
    assert reviewed["predictions"][0]["model_version"] == "reviewed"
    assert reviewed["data"]["ranked_by"] == "tag-ranker v1"


def test_a_suggestion_ranked_by_the_weighted_sum_is_answered_as_such():
    suggestion = _pending_suggestion()  # no learned ranker yet
    services.tags_review_submit(
        video_id=suggestion.video_id, user=UserFactory(role="moderator"), selected=[], shown=[suggestion.tag_id]
    )
    event = TagEvent.objects.get()
    assert (event.action, event.ranker, event.ranked_by) == ("reject", None, "weighted-sum")
