"""Each finding of the adversarial pass (issue 13), pinned by a test that fails without its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from moderation.feedback.models import FeedbackEvent
from moderation.integrations.services import integration_create
from moderation.media.extractors import _rotation
from moderation.models import Video
from tests.factories import DecisionFactory, VideoFactory

ROOT = Path(__file__).resolve().parents[2]
T = "2026-05-01T12:00:00Z"


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_the_api_schema_and_its_docs_need_a_signed_in_user(url, client_as):
    assert Client().get(url).status_code in (401, 403)
    assert client_as("labeler").get(url).status_code == 200


@pytest.mark.django_db
def test_a_non_ascii_digit_video_filter_is_a_400_not_a_500(make_user):
    decision = DecisionFactory()
    api = APIClient()
    api.force_authenticate(make_user("moderator"))
    for raw in ("%C2%B2", "%EF%BC%91", "1.5", "-1", "9" * 40):
        response = api.get(f"/api/decisions/?video={raw}")
        assert response.status_code == 400, (raw, response.status_code)
        assert "video" in response.json()
    ok = api.get(f"/api/decisions/?video={decision.video_id}")
    assert [d["id"] for d in ok.json()["results"]] == [decision.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ["/api/decisions/", "/api/labels/"])
def test_a_bad_page_size_is_a_400_that_names_it_not_silently_100(endpoint, make_user):
    first = DecisionFactory()
    DecisionFactory.create_batch(2, policy_version=first.policy_version, model_version=first.model_version)
    api = APIClient()
    api.force_authenticate(make_user("moderator"))
    for raw in ("abc", "-1", "0", "1.5", "", "%EF%BC%92", "9" * 40):
        response = api.get(f"{endpoint}?page_size={raw}")
        assert response.status_code == 400, (raw, response.status_code)
        assert "Expected a page size" in str(response.json()["page_size"])
    assert len(api.get("/api/decisions/?page_size=2").json()["results"]) == 2
    assert len(api.get("/api/decisions/?page_size=99999").json()["results"]) == 3  # above 500: 500


@pytest.mark.django_db
def test_a_nul_byte_in_a_url_path_is_a_400_not_a_500(client_as):
    client = client_as("moderator")
    response = client.get("/media/keyframes/9/000000.jpg%00")
    assert response.status_code == 400 and b"NUL" in response.content
    assert client.get("/media/keyframes/9/000000.jpg").status_code == 404


def _nested_json(depth: int) -> str:
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [65, 500, 800, 2000])
def test_deeply_nested_json_is_a_400_at_every_depth(depth):
    _integration, token = integration_create(name=f"deep-{depth}")
    video = VideoFactory()
    event = {"event_id": "e1", "type": "report", "video_id": video.pk, "timestamp": T, "reason": "@"}
    body = json.dumps([event]).replace('"@"', _nested_json(depth))
    response = Client().post(
        "/api/feedback/events/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Integration {token}",
    )
    assert response.status_code == 400, response.content[:200]
    assert "nested" in response.json()["detail"]
    assert not FeedbackEvent.objects.exists()


@pytest.mark.django_db
def test_feedback_rows_are_type_checked_and_size_bounded():
    _integration, token = integration_create(name="strict")
    video = VideoFactory()
    rows = [
        {"event_id": "bool", "type": "like", "video_id": True, "timestamp": T},
        {"event_id": "float", "type": "like", "video_id": video.pk + 0.5, "timestamp": T},
        {"event_id": "sup", "type": "like", "video_id": "²", "timestamp": T},
        {"event_id": "list", "type": "report", "video_id": video.pk, "timestamp": T, "reason": [["a"]]},
        {"event_id": "huge", "type": "report", "video_id": video.pk, "timestamp": T, "reason": "x" * 1_000_000},
        {"event_id": "kind", "type": ["report"], "video_id": video.pk, "timestamp": T},
        {"event_id": "ok", "type": "report", "video_id": str(video.pk), "timestamp": T, "reason": "scam"},
    ]
    response = Client().post(
        "/api/feedback/events/",
        json.dumps(rows),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Integration {token}",
    )
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    errors = {e["event_id"]: e["error"] for e in body["errors"]}
    assert body["accepted"] == 1 and set(errors) == {"bool", "float", "sup", "list", "huge", "kind"}
    assert "whole number" in errors["float"] and "whole number" in errors["bool"]
    assert "must be text" in errors["list"] and "longer than 500" in errors["huge"]
    stored = FeedbackEvent.objects.get()
    assert (stored.event_id, stored.video_id, stored.reason) == ("ok", video.pk, "scam")


@pytest.mark.django_db(transaction=True)
def test_uploading_bytes_that_exist_says_duplicate_and_links_the_video(client_as):
    client = client_as("moderator")
    payload = b"\x00\x00\x00\x18ftypmp42" + b"y" * 4096
    first = client.post(
        reverse("moderation:video_upload"),
        {"file": SimpleUploadedFile("a.mp4", payload), "title": "First one"},
        follow=True,
    )
    assert "was uploaded and is queued" in first.content.decode()
    # Walked (hwalk15 row 18): the confirmation links to the new video's own page, which follows its processing.
    uploaded = Video.objects.get()
    link = f'<a href="{reverse("moderation:video_detail", args=[uploaded.pk])}">video #{uploaded.pk}</a> follows it'
    assert link in first.content.decode()
    assert 'size="80"' in first.content.decode() and 'class="upload-title"' in first.content.decode()  # Title box
    again = client.post(
        reverse("moderation:video_upload"),
        {"file": SimpleUploadedFile("b.mp4", payload), "title": "Second"},
        follow=True,
    )
    video = Video.objects.get()
    text = again.content.decode()
    assert "already uploaded" in text and f"#{video.pk}" in text
    assert reverse("moderation:video_detail", args=[video.pk]) in text
    assert "was uploaded and is queued" not in text


def test_rotated_streams_report_the_size_a_viewer_sees():
    assert _rotation({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}) == 270
    assert _rotation({"tags": {"rotate": "90"}}) == 90
    assert _rotation({"side_data_list": [{"rotation": "180"}]}) == 180
    assert _rotation({}) == 0


@pytest.mark.integration
def test_a_rotated_phone_video_probes_portrait(tmp_path):
    from moderation.media.extractors import probe

    landscape = tmp_path / "l.mp4"
    rotated = tmp_path / "r.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=5",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(landscape),
        ],
        check=True,
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(landscape), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated)],
        check=True,
    )
    result = probe(rotated)
    assert (result.width, result.height) == (360, 640)
    assert (probe(landscape).width, probe(landscape).height) == (640, 360)


def test_up_serves_like_production_unless_asked_for_debug(settings, tmp_path, monkeypatch):
    from workbench.management.commands.up import child_environment

    monkeypatch.delenv("SECRET_KEY", raising=False)
    settings.VAR_DIR = tmp_path
    env = child_environment(debug=False)
    assert env["DEBUG"] == "0"
    assert len(env["SECRET_KEY"]) >= 50 and (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert child_environment(debug=True)["DEBUG"] == "1"
    assert child_environment(debug=True)["SECRET_KEY"] == env["SECRET_KEY"]  # kept: sessions survive a restart


@pytest.mark.django_db
def test_a_server_error_shows_the_500_page_without_a_traceback(client_as, settings, monkeypatch):
    import moderation.media.views as media_views

    settings.DEBUG = False

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(media_views, "_render_list", broken)
    client = client_as("moderator")
    client.raise_request_exception = False
    response = client.get(reverse("moderation:video_list"))
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong on our side" in text and "secret internals" not in text and "Traceback" not in text


def test_settings_default_to_debug_off_and_check_deploy_is_clean_in_production(tmp_path):
    """The production environment the README documents passes `manage.py check --deploy` with no warning."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG", "WORKBENCH_"))}
    base.update(
        DJANGO_SETTINGS_MODULE="workbench.settings",
        DATABASE_URL="postgres://workbench:pw@127.0.0.1:1/workbench",
        REDIS_URL="redis://127.0.0.1:1/0",
        WORKBENCH_VAR_DIR=str(tmp_path),
    )
    debug = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)",
        ],
        env=base,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert debug.stdout.strip() == "False"
    production = {
        **base,
        "SECRET_KEY": "k" * 20 + "Zq8#pL2v!Xw9@mN4^bR7&tY1*uI3(oP5)aS6",
        "ALLOWED_HOSTS": "review.example.com",
        "WORKBENCH_HTTPS": "1",
    }
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=production,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    insecure = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=base,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert insecure.returncode != 0  # the check can fail: the dev defaults are not production
