"""Each integration submits server files by ``path`` only from its own folder of the import roots
(``Integration.import_folder``, ``integration-<id>/`` in each of MEDIA_IMPORT_ROOTS): any path inside the roots was
taken, so one platform could import another's files (and learn they exist). A path outside its folder, by '..' or
through a symlink, is a 400 saying so, recorded in the audit log; nothing is ingested."""

from __future__ import annotations

import pytest

from moderation.integrations.models import IntegrationVideo
from moderation.media.models import Video
from moderation.review.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096


@pytest.fixture
def roots(tmp_path, settings, platform, other_platform):  # type: ignore[no-untyped-def]
    root = tmp_path / "imports"
    mine, theirs = root / platform.integration.import_folder, root / other_platform.integration.import_folder
    mine.mkdir(parents=True)
    theirs.mkdir(parents=True)
    (mine / "mine.mp4").write_bytes(PAYLOAD)
    (theirs / "theirs.mp4").write_bytes(PAYLOAD + b"theirs")
    (root / "shared.mp4").write_bytes(PAYLOAD + b"shared")
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    return root, mine, theirs


def _refused(client, path: str) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/api/videos/", {"path": path}, format="json")
    assert response.status_code == 400, (path, response.status_code, response.content)
    return str(response.json()["detail"])


def test_an_integration_imports_from_its_own_folder_by_absolute_or_relative_path(platform, roots) -> None:
    root, mine, _ = roots
    (mine / "sub").mkdir()
    (mine / "sub" / "two.mp4").write_bytes(PAYLOAD + b"two")

    assert platform.post("/api/videos/", {"path": str(mine / "mine.mp4")}, format="json").status_code == 201
    assert platform.post("/api/videos/", {"path": "sub/two.mp4"}, format="json").status_code == 201
    assert IntegrationVideo.objects.filter(integration=platform.integration).count() == 2
    assert platform.integration.import_folder == f"integration-{platform.integration.pk}"


def test_another_integrations_files_and_the_shared_roots_are_refused_and_recorded(
    platform, other_platform, roots
) -> None:
    root, mine, theirs = roots
    (mine / "link.mp4").symlink_to(theirs / "theirs.mp4")  # a symlink in its own folder to another's file
    (mine / "linked-folder").symlink_to(theirs, target_is_directory=True)
    attempts = [
        str(theirs / "theirs.mp4"),  # another integration's file, by its absolute path
        str(root / "shared.mp4"),  # inside MEDIA_IMPORT_ROOTS but in no integration's folder
        str(mine / ".." / other_platform.integration.import_folder / "theirs.mp4"),  # '..' out of its folder
        f"../{other_platform.integration.import_folder}/theirs.mp4",  # the same, relative
        str(mine / "link.mp4"),
        str(mine / "linked-folder" / "theirs.mp4"),
    ]
    for path in attempts:
        detail = _refused(platform, path)
        assert "outside this integration's import folder" in detail, detail
        assert f"({platform.integration.import_folder}/ in the server's import folders)" in detail, detail
        assert str(root) not in detail.replace(path, "")  # the server's folders are not told to a platform

    assert not Video.objects.exists() and not IntegrationVideo.objects.exists()
    events = AuditEvent.objects.filter(action="integration.import_refused")
    assert events.count() == len(attempts)
    assert {e.object_id for e in events} == {str(platform.integration.pk)}
    assert [e.payload["path"] for e in events.order_by("pk")] == attempts
    # The owner still imports its file.
    assert other_platform.post("/api/videos/", {"path": str(theirs / "theirs.mp4")}, format="json").status_code == 201


def test_a_signed_in_users_path_is_still_confined_to_the_roots_only(roots, client_as, make_user) -> None:
    from rest_framework.test import APIClient

    root, _mine, theirs = roots
    client = APIClient()
    client.force_authenticate(make_user("admin"))
    assert client.post("/api/videos/", {"path": str(root / "shared.mp4")}, format="json").status_code == 201
    response = client.post("/api/videos/", {"path": str(root / ".." / "elsewhere.mp4")}, format="json")
    assert (
        response.status_code == 400 and "outside the import folders (MEDIA_IMPORT_ROOTS)" in response.json()["detail"]
    )
    assert not AuditEvent.objects.filter(action="integration.import_refused").exists()


def test_a_user_who_does_not_manage_integrations_is_kept_out_of_every_integrations_folder(
    roots, make_user, platform
) -> None:
    """A moderator (upload rights) could import any platform's files by naming its folder: the platforms were
    confined to their own folders, users to the roots only. Refused 403, said and recorded; admins keep access."""
    from rest_framework.test import APIClient

    root, mine, theirs = roots
    (root / "user-drop").mkdir()
    (root / "user-drop" / "link.mp4").symlink_to(theirs / "theirs.mp4")  # a symlink in the shared part into one
    moderator = make_user("moderator")
    client = APIClient()
    client.force_authenticate(moderator)
    attempts = [
        str(theirs / "theirs.mp4"),
        str(mine / "mine.mp4"),
        str(root / "user-drop" / ".." / platform.integration.import_folder / "mine.mp4"),
        str(root / "user-drop" / "link.mp4"),
    ]
    for path in attempts:
        response = client.post("/api/videos/", {"path": path}, format="json")
        assert response.status_code == 403, (path, response.status_code, response.content)
        assert "a platform integration's import folder" in response.json()["detail"]
        assert "only admins (who manage integrations) may import them" in response.json()["detail"]
    assert not Video.objects.exists()
    events = AuditEvent.objects.filter(action="video.import_refused").order_by("pk")
    assert [e.payload["path"] for e in events] == attempts
    assert {e.actor_id for e in events} == {moderator.pk}
    # Outside the roots is refused and recorded too; the shared part of the roots stays open to the moderator.
    outside = client.post("/api/videos/", {"path": str(root / ".." / "elsewhere.mp4")}, format="json")
    assert outside.status_code == 400 and "outside the import folders" in outside.json()["detail"]
    assert AuditEvent.objects.filter(action="video.import_refused").count() == len(attempts) + 1
    assert client.post("/api/videos/", {"path": str(root / "shared.mp4")}, format="json").status_code == 201

    admin = APIClient()
    admin.force_authenticate(make_user("admin"))
    assert admin.post("/api/videos/", {"path": str(theirs / "theirs.mp4")}, format="json").status_code == 201
