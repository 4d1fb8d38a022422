from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from moderation.models import Video
from tests.factories import DecisionFactory


@pytest.fixture
def api(make_user):  # type: ignore[no-untyped-def]
    def _api(role: str) -> APIClient:
        client = APIClient()
        client.force_authenticate(make_user(role))
        return client

    return _api


@pytest.mark.django_db(transaction=True)
def test_moderator_uploads_through_the_api_and_same_bytes_link_to_the_same_video(api):
    client = api("moderator")
    payload = b"\x00\x00\x00\x18ftypmp42" + b"x" * 2048
    first = client.post("/api/videos/", {"file": SimpleUploadedFile("a.mp4", payload), "title": "First"})
    again = client.post("/api/videos/", {"file": SimpleUploadedFile("b.mp4", payload), "title": "Again"})

    assert first.status_code == 201, first.content
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert Video.objects.count() == 1
    assert len(first.json()["sha256"]) == 64


@pytest.mark.django_db
def test_upload_without_a_file_is_a_400_with_the_field_named(api):
    response = api("moderator").post("/api/videos/", {"title": "no file"})
    assert response.status_code == 400
    assert "file" in response.json()


@pytest.mark.django_db
def test_video_detail_and_decisions_are_readable_by_labelers(api):
    decision = DecisionFactory()
    client = api("labeler")
    detail = client.get(f"/api/videos/{decision.video_id}/")
    assert detail.status_code == 200 and detail.json()["keyframes"] == []
    decisions = client.get(f"/api/decisions/?video={decision.video_id}").json()["results"]
    assert [d["id"] for d in decisions] == [decision.pk]
    assert decisions[0]["cot"][0]["key"] == "content_extraction"
