"""Ways out of an integration's import folder (``integration-<id>/``) that its first checks left open:

- a folder of its own swapped for a symlink between the path's check and the file's opening (TOCTOU): the file
  was opened through the symlink, so another integration's (or any readable) file was ingested as the platform's;
- a symlink of its own to a file that does not exist answered "No such file" where one to a file that does answered
  "outside": an oracle for which files exist anywhere on the server;
- a path too long for the file system was a 500 (``OSError: File name too long``), not a 400 saying so;
- a hard link in its folder to another's file was imported: a hard link is no symlink, so no path rule saw it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation.integrations.models import IntegrationVideo
from moderation.media import ingest
from moderation.media.models import Video
from moderation.review.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)  # the refusal is recorded after its rollback

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096


@pytest.fixture
def roots(tmp_path, settings, platform, other_platform):  # type: ignore[no-untyped-def]
    root = tmp_path / "imports"
    mine, theirs = root / platform.integration.import_folder, root / other_platform.integration.import_folder
    (mine / "drop").mkdir(parents=True)
    theirs.mkdir(parents=True)
    (mine / "drop" / "clip.mp4").write_bytes(PAYLOAD + b"mine")
    (theirs / "clip.mp4").write_bytes(PAYLOAD + b"theirs")
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    return root, mine, theirs


@pytest.mark.parametrize("swapped", ["folder", "file"])
def test_a_folder_or_file_swapped_for_a_symlink_after_the_check_is_not_followed(
    platform, roots, monkeypatch, swapped
) -> None:
    _root, mine, theirs = roots
    real_check = ingest.import_path_confined

    def check_then_swap(path, **kwargs):  # type: ignore[no-untyped-def]
        resolved = real_check(path, **kwargs)
        # The platform's own folder (or file), replaced by a symlink to another's the instant after the check.
        if swapped == "folder":
            os.rename(mine / "drop", mine / "drop-was")
            (mine / "drop").symlink_to(theirs, target_is_directory=True)
        else:
            (mine / "drop" / "clip.mp4").unlink()
            (mine / "drop" / "clip.mp4").symlink_to(theirs / "clip.mp4")
        return resolved

    # video_submit imports it from moderation.media.ingest when it runs: the check runs as it is, then the swap.
    monkeypatch.setattr(ingest, "import_path_confined", check_then_swap)

    response = platform.post("/api/videos/", {"path": "drop/clip.mp4"}, format="json")

    assert response.status_code == 400, (response.status_code, response.content)
    assert "symlink" in response.json()["detail"]
    assert not Video.objects.exists() and not IntegrationVideo.objects.exists()
    refused = AuditEvent.objects.get(action="integration.import_refused")
    assert refused.payload["path"] == "drop/clip.mp4"


def test_a_dangling_symlink_out_reads_as_one_to_a_file_that_exists(platform, roots) -> None:
    """Both are "outside": the answer must not say whether the target exists."""
    _root, mine, theirs = roots
    (mine / "exists.mp4").symlink_to(theirs / "clip.mp4")
    (mine / "missing.mp4").symlink_to(theirs / "no-such.mp4")
    (mine / "etc").symlink_to(Path("/etc/no-such-file-here"))

    answers = {}
    for name in ("exists.mp4", "missing.mp4", "etc"):
        response = platform.post("/api/videos/", {"path": name}, format="json")
        assert response.status_code == 400, (name, response.status_code, response.content)
        answers[name] = response.json()["detail"].replace(name, "<path>")
    assert len(set(answers.values())) == 1, answers
    assert "outside this integration's import folder" in answers["missing.mp4"]
    # A missing file inside its own folder is still said as missing.
    response = platform.post("/api/videos/", {"path": "drop/none.mp4"}, format="json")
    assert response.status_code == 400 and "No such file" in response.json()["detail"]


def test_a_path_too_long_for_the_file_system_is_a_400_saying_so(platform, roots) -> None:
    response = platform.post("/api/videos/", {"path": "a" * 300 + ".mp4"}, format="json")  # a name over 255 bytes
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert "too long for the server's file system" in response.json()["detail"]
    assert not Video.objects.exists()


def test_a_hard_link_in_its_folder_to_anothers_file_is_refused_and_recorded(platform, roots) -> None:
    _root, mine, theirs = roots
    os.link(theirs / "clip.mp4", mine / "drop" / "linked.mp4")

    response = platform.post("/api/videos/", {"path": "drop/linked.mp4"}, format="json")

    assert response.status_code == 400, (response.status_code, response.content)
    detail = response.json()["detail"]
    assert "hard link" in detail and "nothing was imported" in detail
    assert str(theirs) not in detail and str(mine) not in detail
    assert not Video.objects.exists() and not IntegrationVideo.objects.exists()
    refused = AuditEvent.objects.get(action="integration.import_refused")
    assert refused.payload["path"] == "drop/linked.mp4"
    # Its own file, one name only, still imports.
    assert platform.post("/api/videos/", {"path": "drop/clip.mp4"}, format="json").status_code in (200, 201, 202)
