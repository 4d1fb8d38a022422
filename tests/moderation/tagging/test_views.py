"""Tag screens over HTTP: search fragment, the panel on the review screen, roles."""

from __future__ import annotations

import pytest

from moderation.tagging.services import tags_import
from tests.factories import ReviewTaskFactory

pytestmark = pytest.mark.django_db


def test_search_fragment_lists_matches_and_reports_server_time(client_as) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["美食", "街头美食", "美女", "<b>x</b>"])
    client = client_as("moderator")
    response = client.get("/tags/search/", {"q": "美食"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("美食") < body.index("街头美食") and "美女" not in body
    assert response["Server-Timing"].startswith("search;dur=")
    escaped = client.get("/tags/search/", {"q": "<b>"}).content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in escaped and "<b>x</b>" not in escaped
    assert "No tag matches" in client.get("/tags/search/", {"q": "无"}).content.decode()


def test_review_screen_loads_the_tags_panel_and_labelers_are_refused(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    client = client_as("moderator")
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next

    user = User.objects.get(pk=client.session["_auth_user_id"])
    claimed = review_claim_next(user=user, queue=task.queue)
    assert claimed is not None
    screen = client.get(f"/review/{claimed.pk}/").content.decode()
    panel_url = f"/tags/video/{task.decision.video_id}/panel/"
    assert f'hx-get="{panel_url}"' in screen
    panel = client.get(panel_url)
    assert panel.status_code == 200 and "No tag candidates yet" in panel.content.decode()
    assert client_as("labeler").get(panel_url).status_code == 403
    assert client_as("moderator").post("/tags/ranker/train/").status_code == 403  # admins retrain


def test_api_video_detail_has_tags_and_the_list_filters_by_tag(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    from moderation.tagging.models import Tag, VideoTag
    from tests.factories import VideoFactory

    tags_import(lines=["美食", "旅游"])
    food, travel = Tag.objects.get(name="美食"), Tag.objects.get(name="旅游")
    a, b = VideoFactory(file=""), VideoFactory(file="")
    VideoTag.objects.create(video=a, tag=food, added_by=make_user("moderator"))
    VideoTag.objects.create(video=b, tag=travel)
    client = client_as("moderator")
    detail = client.get(f"/api/videos/{a.pk}/").json()
    assert [t["name"] for t in detail["tags"]] == ["美食"] and detail["tag_suggestions"] == []
    listed = client.get("/api/videos/", {"tag": "旅游"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["id"] for r in rows] == [b.pk]
    schema = client.get("/api/schema/").content.decode()
    assert "tag_suggestions" in schema and "name: tag" in schema


def test_tag_screen_says_a_missing_video_file(client_as, policy_version, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from django.urls import reverse

    from moderation.review.models import AuditEvent
    from moderation.tagging.services import tag_queue_default

    settings.MEDIA_ROOT = tmp_path
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=tag_queue_default())
    video = task.decision.video
    client = client_as("moderator")
    url = reverse("moderation:tag_task", args=[task.pk])
    html = client.get(url).content.decode()
    assert f'src="{video.file.url}"' in html and 'id="media-missing"' not in html

    (Path(settings.MEDIA_ROOT) / video.file.name).unlink()
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Missing from media storage: the video file" in html and 'data-missing="video"' in html
    assert "<video" not in html
    video.refresh_from_db()
    assert video.missing_media == [video.file.name]
    assert AuditEvent.objects.filter(object_type="video", object_id=str(video.pk), action="media.missing").count() == 1
