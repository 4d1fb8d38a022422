"""Media storage on a real S3-compatible server (s3rver started by the suite): writes, reads, playback
redirects with Range, role checks, and the start-up check's messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from workbench import storage


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    import requests

    response = requests.get(url, headers=headers or {}, timeout=10, allow_redirects=False)
    return response.status_code, dict(response.headers), response.content


def test_store_fetch_list_and_delete_round_trip(s3_media, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00video" * 1000)
    storage.store_file(source, "keyframes/7/000001.jpg")
    storage.store_file(source, "keyframes/7/000002.jpg")
    storage.store_file(source, "videos/2026/01/abc-clip.mp4")
    # The object is in the bucket, not on this node's disk.
    assert not (Path(storage.scratch_root()).parent / "videos").exists()
    assert storage.list_names("keyframes/7") == ["keyframes/7/000001.jpg", "keyframes/7/000002.jpg"]

    with storage.scratch_dir("t") as scratch:
        local = storage.local_copy("videos/2026/01/abc-clip.mp4", scratch)
        assert local.read_bytes() == source.read_bytes() and local.is_relative_to(scratch)
    assert not scratch.exists(), "scratch is removed after the work"

    storage.delete_prefix("keyframes/7")
    assert storage.list_names("keyframes/7") == []
    with storage.scratch_dir("t") as scratch, pytest.raises(storage.MediaMissing, match="missing"):
        storage.local_copy("keyframes/7/000001.jpg", scratch)


def test_media_view_redirects_to_a_presigned_url_that_seeks(s3_media, client_as, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    source = tmp_path / "v.mp4"
    source.write_bytes(payload)
    storage.store_file(source, "videos/2026/01/v.mp4")

    response = client_as("moderator").get("/media/videos/2026/01/v.mp4")
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith(s3_media.endpoint) and "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url

    status, headers, body = _get(url, {"Range": "bytes=1000-1999"})
    assert status == 206 and body == payload[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(payload)}"
    assert headers["Content-Type"] == "video/mp4"


def test_media_view_is_role_checked(s3_media, client_as) -> None:
    assert client_as("labeler").get("/media/videos/x.mp4").status_code == 302
    assert client_as("policy_editor").get("/media/videos/x.mp4").status_code == 403
    from django.test import Client

    anonymous = Client().get("/media/videos/x.mp4")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_presigned_urls_name_the_public_endpoint(s3_media, client_as, settings) -> None:
    settings.MEDIA_S3_PUBLIC_ENDPOINT_URL = "https://media.example.org"
    response = client_as("moderator").get("/media/covers/a.jpg")
    assert response["Location"].startswith("https://media.example.org/")


def test_check_storage_passes_and_reports_wrong_credentials_and_unreachable_store(s3_media, settings) -> None:
    call_command("check_storage")

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "access_key": "WRONG", "secret_key": "nope"},
        },
    }
    with pytest.raises(CommandError, match="credentials were refused"):
        call_command("check_storage")

    from tests.s3server import free_port

    settings.MEDIA_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.MEDIA_S3_CONNECT_TIMEOUT = 0.5
    settings.MEDIA_S3_MAX_ATTEMPTS = 1
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": settings.MEDIA_S3_ENDPOINT_URL},
        },
    }
    with pytest.raises(CommandError, match="cannot reach"):
        call_command("check_storage")


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"bucket_name": "no-such-bucket"}, "bucket does not exist"),
        ({"access_key": "WRONG", "secret_key": "nope"}, "credentials were refused"),
    ],
    ids=["missing-bucket", "wrong-credentials"],
)
def test_up_stops_with_a_clear_error_before_starting_anything(
    s3_media, settings, monkeypatch, options: dict[str, str], said: str
) -> None:
    started: list[str] = []
    from workbench import embedded

    # Nothing may start before the storage check: no embedded service, no worker, no web server.
    monkeypatch.setattr(embedded, "start_configured", lambda *a, **k: started.append("embedded"))
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], **options}},
    }
    settings.MEDIA_S3_BUCKET = settings.STORAGES["default"]["OPTIONS"]["bucket_name"]
    with pytest.raises(CommandError, match=said) as error:
        call_command("up", "--no-demo")
    assert "Media storage: bucket" in str(error.value) and started == []
