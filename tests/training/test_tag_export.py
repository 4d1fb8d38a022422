"""Tag events as a JSONL / Hugging Face dataset and as Label Studio Taxonomy tasks."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.labelstudio import labelstudio_tag_task, labelstudio_tags_config
from moderation.tagging.models import Tag, TagSuggestion
from moderation.tagging.services import tags_import, tags_import_hierarchy, tags_review_submit
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def test_tag_events_export_jsonl_hf_and_labelstudio(make_user, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["美食", "火锅", "旅游"])
    tags_import_hierarchy(lines=["火锅\t美食"])
    food, hotpot, travel = (Tag.objects.get(name=n) for n in ("美食", "火锅", "旅游"))
    video = VideoFactory(title="四川火锅", file="")
    TagSuggestion.objects.create(video=video, tag=hotpot, score=0.8, sources=["text"], features={"text_title": 1.0})
    TagSuggestion.objects.create(video=video, tag=travel, score=0.3, sources=["embedding"], features={})
    task = labelstudio_tag_task(video=video, base_url="http://wb")
    assert task["predictions"][0]["result"][0]["value"]["taxonomy"] == [["火锅"], ["旅游"]]
    config = labelstudio_tags_config(["美食", "火锅", "旅游"])
    assert '<Taxonomy name="tags" toName="text"><Choice value="美食"><Choice value="火锅"></Choice></Choice>' in config

    tags_review_submit(
        video_id=video.pk, user=make_user("moderator"), selected=[hotpot.pk, food.pk], shown=[hotpot.pk, travel.pk]
    )
    out = StringIO()
    call_command("export_tag_events", str(tmp_path / "ds"), "--hf", stdout=out)
    rows = [json.loads(line) for line in (tmp_path / "ds" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted((r["tag"], r["action"], r["label"]) for r in rows) == [
        ("旅游", "reject", 0),
        ("火锅", "accept", 1),
        ("美食", "add", 1),
    ]
    assert json.loads(next(r for r in rows if r["tag"] == "火锅")["features"]) == {"text_title": 1.0}
    from datasets import load_from_disk

    assert load_from_disk(str(tmp_path / "ds" / "hf"))["train"].num_rows == 3
    # Reviewed tags replace the suggestions in the Label Studio pre-annotation.
    task = labelstudio_tag_task(video=video, base_url="http://wb")
    assert task["predictions"][0]["model_version"] == "reviewed"
    assert sorted(task["predictions"][0]["result"][0]["value"]["taxonomy"]) == [["火锅"], ["美食"]]
