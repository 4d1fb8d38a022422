"""Each finding of the second adversarial pass (the surfaces added since the first one: tag sets and imports,
the tag item screen, object storage, integrations' scoped API), pinned by a test that fails without its fix."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.db.models import FileField
from django.test import Client

from moderation.feedback.models import FeedbackEvent
from moderation.integrations.models import IntegrationVideo
from moderation.integrations.services import integration_create
from moderation.labels.models import ItemLabel
from moderation.review.models import Review, ReviewTask
from moderation.review.services import review_claim_next
from moderation.tagging.models import Tag, VideoTag
from moderation.tagging.services import tags_import
from tests.factories import DecisionFactory, TagTaskFactory, VideoFactory
from workbench.views import SERVED_MEDIA_FOLDERS

pytestmark = pytest.mark.django_db
T = "2026-05-01T12:00:00Z"


def test_a_claimed_tag_item_is_not_closed_by_tags_sent_for_another_video(client_as, policy_version):
    """The item's id and the video's are both in the request: tags for video B sent with the item of video A
    closed A's item untagged (it left the queue as done) and wrote them to B."""
    tags_import(lines=["美食"])
    food = Tag.objects.get(name="美食")
    task = TagTaskFactory(decision__policy_version=policy_version)
    other = DecisionFactory(policy_version=policy_version).video  # decided: open to the moderator
    client = client_as("moderator")
    assert review_claim_next(user=User.objects.get(pk=client.session["_auth_user_id"]), queue=task.queue) == task

    response = client.post(f"/tags/video/{other.pk}/submit/", {"task": task.pk, "tag": [food.pk]}, follow=True)

    assert "for another video than this item" in response.content.decode()
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED
    assert not VideoTag.objects.exists()
    ok = client.post(f"/tags/video/{task.decision.video_id}/submit/", {"task": task.pk, "tag": [food.pk]})
    assert ok.status_code == 302
    assert list(VideoTag.objects.values_list("video_id", flat=True)) == [task.decision.video_id]


def test_a_tags_item_takes_no_verdict(client_as, policy_version):
    """Every video with tag suggestions has a tags item; posted to the review screen's submit, its holder's
    verdict became the video's trusted human label at once, outside the moderation queues' N agreeing
    reviews and group restrictions (and over a label already settled there)."""
    task = TagTaskFactory(decision__policy_version=policy_version)
    client = client_as("moderator")
    assert review_claim_next(user=User.objects.get(pk=client.session["_auth_user_id"]), queue=task.queue) == task
    other = next(k for k in policy_version.label_names() if k != task.decision.label)

    page = client.post(f"/review/{task.pk}/submit/", {"verdict": "override", "label": other}, follow=True)
    background = client.post(f"/review/{task.pk}/submit/", {"verdict": "approve"}, HTTP_X_REVIEW_BACKGROUND="1")

    assert "takes tags on its tag screen, not a verdict" in page.content.decode()
    assert background.status_code == 409 and background.json()["still_yours"] is True
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED
    assert not Review.objects.exists() and not ItemLabel.objects.exists()


@pytest.mark.parametrize("name", ["tmp/ingest-abc.part", "cache/adapters/7/adapter_model.bin", "secret.txt"])
def test_the_media_view_serves_media_folders_only(client_as, settings, tmp_path, name):
    """Everything under MEDIA_ROOT was served to every media role: half-written uploads, a worker's cached
    adapters and keyframes, whatever else lies there."""
    from tests.factories import DecidedVideoFactory

    settings.MEDIA_ROOT = tmp_path
    frame = f"keyframes/{DecidedVideoFactory(file='').pk}/000001.jpg"  # a decided video's: open to all
    for stored in (name, frame):
        (tmp_path / stored).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stored).write_bytes(b"bytes")
    client = client_as("labeler")
    assert client.get(f"/media/{name}").status_code == 404
    assert client.get(f"/media/{frame.rsplit('/', 1)[0]}/../../secret.txt").status_code == 404
    assert client.get(f"/media/{frame}").status_code == 200


def test_with_object_storage_training_artifacts_are_not_presigned_for_media_roles(s3_media, client_as):
    """The bucket also holds training snapshots, checkpoints and adapters (``training/``): the media view
    presigned any key, so a moderator or labeler downloaded what the training screens keep to admins."""
    for role in ("moderator", "labeler", "admin"):
        client = client_as(role)
        assert client.get("/media/training/datasets/1/train.jsonl").status_code == 404, role
        assert client.get("/media/training/jobs/3/adapter/adapter_model.safetensors").status_code == 404, role
        assert client.get("/media/videos/2026/01/v.mp4").status_code == 302, role


def test_every_stored_media_field_is_in_a_served_folder():
    from django.apps import apps

    folders = {
        str(field.upload_to).split("/")[0]
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, FileField)
    }
    assert folders and folders <= set(SERVED_MEDIA_FOLDERS), folders - set(SERVED_MEDIA_FOLDERS)


def _events(token: str, events: list[dict[str, object]]) -> dict[str, object]:
    response = Client().post(
        "/api/feedback/events/", json.dumps(events), content_type="application/json",
        HTTP_AUTHORIZATION=f"Integration {token}",
    )  # fmt: skip
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_an_integration_sends_no_events_about_another_platforms_videos():
    """Reads are scoped to an integration's own videos, but the feedback endpoint took reports and appeals
    about any video, and its 'unknown video_id' told which of another platform's ids and external ids exist."""
    a, token_a = integration_create(name="platform-a")
    _b, token_b = integration_create(name="platform-b")
    theirs = VideoFactory(external_id="a-123")
    IntegrationVideo.objects.create(integration=a, video=theirs)
    imported = VideoFactory()  # an upload or import: no platform's
    report = {"type": "report", "timestamp": T, "reason": "scam"}
    body = _events(
        token_b,
        [
            {**report, "event_id": "by-id", "video_id": theirs.pk},
            {**report, "event_id": "by-ext", "video_external_id": "a-123"},
            {**report, "event_id": "missing", "video_id": theirs.pk + imported.pk + 1000},
            {**report, "event_id": "imported", "video_id": imported.pk},
        ],
    )
    errors = {e["event_id"]: e["error"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert body["accepted"] == 1 and set(errors) == {"by-id", "by-ext", "missing"}
    assert errors["by-id"] == f"unknown video_id {theirs.pk}"  # as for an id that does not exist
    assert errors["by-ext"] == "unknown video_external_id 'a-123'"
    assert list(FeedbackEvent.objects.values_list("video_id", flat=True)) == [imported.pk]
    assert _events(token_a, [{**report, "event_id": "own", "video_external_id": "a-123"}])["accepted"] == 1


def test_a_long_pair_note_is_refused_with_the_limit_not_cut_short(client_as, policy_version):
    """A reproduction pair's note was cut at 2,000 characters without a word (the review note's rule is a
    refusal naming the limit, and its box stops at the limit)."""
    from moderation.reproduction.models import PairReview, ReproCandidate
    from moderation.reproduction.services import pair_claim_next
    from moderation.review.services import REVIEW_NOTE_MAX_CHARS

    video, original = (DecisionFactory(policy_version=policy_version).video for _ in range(2))  # decided: open
    pair = ReproCandidate.objects.create(video=video, original=original, score=0.9, retrieval_score=0.9)
    client = client_as("moderator")
    assert pair_claim_next(user=User.objects.get(pk=client.session["_auth_user_id"])) == pair
    page = client.get(f"/repro/{pair.pk}/").content.decode()
    assert f'name="note" rows="2" maxlength="{REVIEW_NOTE_MAX_CHARS}"' in page

    too_long = client.post(
        f"/repro/{pair.pk}/submit/", {"verdict": "derivative", "note": "长" * (REVIEW_NOTE_MAX_CHARS + 1)}, follow=True
    )
    assert f"a note holds at most {REVIEW_NOTE_MAX_CHARS:,}" in too_long.content.decode()
    assert not PairReview.objects.exists()
    client.post(f"/repro/{pair.pk}/submit/", {"verdict": "derivative", "note": "长" * REVIEW_NOTE_MAX_CHARS})
    assert len(PairReview.objects.get().note) == REVIEW_NOTE_MAX_CHARS


ODD = ["x" * 10_000, "²", "-1", "9" * 30, "nan", " ", "<script>alert(1)</script>\t\n"]


def test_odd_values_in_the_newer_forms_are_answered_never_a_500(client_as, policy_version):
    """Every value of ODD in every field of the forms added since the first pass (tag sets, vocabulary rows,
    imports, cascade targets, integrations): a page, a redirect or a 4xx, and nothing escapes
    unescaped. Checked clean in this pass; kept so a regression shows."""
    tags_import(lines=["美食"])
    tag = Tag.objects.get(name="美食")
    editor, admin = client_as("policy_editor"), client_as("admin")
    requests = []
    for odd in ODD:
        number = {"show_threshold": odd, "preselect_threshold": odd, "max_suggestions": odd}
        requests += [
            (editor, "post", "/tags/sets/save/", {"slug": odd, "name": odd, "create": "1", "tags": odd, **number}),
            (editor, "post", f"/tags/vocabulary/{tag.pk}/", {"name": odd, "aliases": odd, "parent": odd, "seen": odd}),
            (editor, "post", "/tags/vocabulary/import/", {"kind": odd, "lines": odd}),
            (admin, "post", "/cascade/target/", {"target_accuracy": odd}),
            (admin, "post", "/integrations/add/", {"name": odd, "rate_limit": odd}),
        ]
    for client, method, url, data in requests:
        response = getattr(client, method)(url, data)
        assert response.status_code < 500, (url, data)
        assert b"<script>alert(1)" not in response.content, (url, data)
