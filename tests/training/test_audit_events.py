"""What a model is trained and measured on is in the audit log: SFT / DPO dataset builds, tag-event dataset
downloads and evaluation starts name who started them and what they chose (job starts already did). They
did not: a dataset built from the wrong data, or an evaluation run on a hand-picked file, had no author."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from moderation.inference.services import model_version_register
from moderation.models import ItemLabel
from moderation.review.models import AuditEvent
from moderation.tagging.models import Tag, TagSet, TagSuggestion
from moderation.tagging.services import tags_import, tags_review_submit
from tests.factories import UserFactory, VideoFactory
from training.models import EvaluationRun, PreferenceDataset

pytestmark = pytest.mark.django_db


def _auditor() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _in_the_audit_log(event: AuditEvent, *words: str) -> None:
    auditor = _auditor()
    listed = auditor.get(reverse("admin:moderation_auditevent_changelist")).content.decode()
    assert event.action in listed and event.actor_name in listed, event.action
    page = auditor.get(reverse("admin:moderation_auditevent_change", args=[event.pk])).content.decode()
    for word in words:
        assert word in page, (event.action, word)


def test_dataset_builds_are_audited_with_their_builder_and_contents(
    client_as: Any, make_user: Any, training_dirs: Any, override_review: Any, cot_correction: Any
) -> None:
    admin = make_user("admin")
    client = Client()
    client.force_login(admin)
    client.post(reverse("training:dataset_build"), {"kind": "dpo", "name": "pairs for audit"})
    client.post(reverse("training:dataset_build"), {"kind": "sft", "eval_share": "0"})

    dpo, sft = PreferenceDataset.objects.get(kind="dpo"), PreferenceDataset.objects.get(kind="sft")
    events = {e.payload["kind"]: e for e in AuditEvent.objects.filter(action="dataset.build")}
    assert set(events) == {"dpo", "sft"}
    for dataset in (dpo, sft):
        event = events[dataset.kind]
        assert (event.actor_id, event.object_type, event.object_id) == (admin.pk, "preferencedataset", str(dataset.pk))
        assert event.payload["train_count"] == dataset.train_count and event.payload["name"] == dataset.name
    assert events["dpo"].payload["rejected_from"] == "every"
    _in_the_audit_log(events["dpo"], "pairs for audit", admin.username)
    # The same build again makes no snapshot, so no event.
    client.post(reverse("training:dataset_build"), {"kind": "dpo", "name": "again"})
    assert AuditEvent.objects.filter(action="dataset.build").count() == 2


def test_a_tag_dataset_download_is_audited_with_its_choices(make_user: Any) -> None:
    tags_import(lines=["美食", "火锅"])
    food, hotpot = Tag.objects.get(name="美食"), Tag.objects.get(name="火锅")
    food_set = TagSet.objects.create(name="Food", slug="food")
    food_set.tags.set([food, hotpot])
    video = VideoFactory(title="四川火锅", file="")
    TagSuggestion.objects.create(video=video, tag=hotpot, score=0.8, sources=["text"], features={})
    tags_review_submit(video_id=video.pk, user=make_user("moderator"), selected=[hotpot.pk], shown=[hotpot.pk])
    admin = make_user("admin")
    client = Client()
    client.force_login(admin)
    url = reverse("training:tag_events_download")

    assert client.get(url, {"events-tag_set": "food", "events-file_format": "jsonl"}).status_code == 200
    assert client.get(url, {"events-since": "2000-01-01", "events-until": "2000-01-02"}).status_code == 400

    [event] = AuditEvent.objects.filter(action="tag_dataset.build")
    assert (event.actor_id, event.object_type, event.object_id) == (admin.pk, "tagset", str(food_set.pk))
    assert event.payload["tag_set"] == "food" and event.payload["format"] == "jsonl" and event.payload["events"] == 1
    _in_the_audit_log(event, "food", admin.username)
    client.get(url, {"events-file_format": "jsonl"})  # every tag: about no one set
    every = AuditEvent.objects.filter(action="tag_dataset.build").order_by("-pk").first()
    assert every is not None and every.object_type == "" and every.payload["tag_set"] is None
    _in_the_audit_log(every, "tag_dataset.build")


def test_an_evaluation_start_is_audited_with_its_model_and_set(make_user: Any, policy_version: Any) -> None:
    version = model_version_register(name="audited-candidate", backend="evidence_baseline")
    video = VideoFactory(title="gold")
    ItemLabel.objects.create(video=video, label="正向", source=ItemLabel.Source.REVIEW)
    admin = make_user("admin")
    client = Client()
    client.force_login(admin)

    client.post(reverse("training:evaluation_start"), {"model_version": version.pk, "eval_set": "gold"})

    run = EvaluationRun.objects.get()
    [event] = AuditEvent.objects.filter(action="evaluation.start")
    assert (event.actor_id, event.object_type, event.object_id) == (admin.pk, "evaluationrun", str(run.pk))
    assert event.payload["model_version"] == "audited-candidate" and event.payload["eval_set"] == "gold"
    assert event.payload["eval_set_key"] == run.eval_set_key
    _in_the_audit_log(event, "audited-candidate", admin.username)
