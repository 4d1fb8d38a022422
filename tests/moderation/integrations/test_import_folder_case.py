"""The integration folder rule (``integration-<id>/`` in each of MEDIA_IMPORT_ROOTS) compared names as written: on a
mount that ignores case (ext4 casefold, APFS, an SMB or vfat share) ``Integration-7/`` is integration 7's own folder,
yet it passed for a folder of no integration, so a user who does not manage integrations imported that platform's
files by naming it so, a file there with another name elsewhere (a hard link) was not refused, and a model folder in it
was loaded. The names are folded as such a mount compares them; here, on a case-sensitive file system, the folders that
differ only in case are made apart, and each must be ruled as the integration's all the same."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation.media import ingest
from moderation.media.models import Video
from training.errors import TrainingError
from training.services import model_source_checked

pytestmark = pytest.mark.django_db

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096


def _spellings(integration_id: int) -> list[str]:
    return [f"Integration-{integration_id}", f"INTEGRATION-{integration_id}", f"inte\u200dgration-{integration_id}"]


@pytest.fixture
def root(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "imports"
    root.mkdir()
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    return root


def test_a_user_who_does_not_manage_integrations_is_kept_out_whatever_the_case(root, platform, make_user) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.test import APIClient

    pk = platform.integration.pk
    client = APIClient()
    client.force_authenticate(make_user("moderator"))
    for n, name in enumerate(_spellings(pk)):
        (root / name).mkdir()
        (root / name / "clip.mp4").write_bytes(PAYLOAD + bytes([n]))
        assert ingest.import_path_in_integration_folder(root / name / "clip.mp4"), name
        with pytest.raises(ingest.ImportPathForbidden):
            ingest.import_path_confined(root / name / "clip.mp4", integration_folders_closed=True)
        response = client.post("/api/videos/", {"path": str(root / name / "clip.mp4")}, format="json")
        assert response.status_code == 403, (name, response.status_code, response.content)
        assert "a platform integration's import folder" in response.json()["detail"]
    assert not Video.objects.exists()
    # Only the folder's first name is the rule's: a folder of the shared part named alike further down is not one.
    (root / "shared" / "Integration-1").mkdir(parents=True)
    assert not ingest.import_path_in_integration_folder(root / "shared" / "Integration-1" / "clip.mp4")
    assert not ingest.import_path_in_integration_folder(root / "Integrations-1" / "clip.mp4")


def test_a_platform_is_not_let_into_another_platforms_folder_by_its_case(root, platform, other_platform) -> None:  # type: ignore[no-untyped-def]
    theirs = root / f"Integration-{other_platform.integration.pk}"
    theirs.mkdir()
    (theirs / "clip.mp4").write_bytes(PAYLOAD)
    (root / platform.integration.import_folder).mkdir()
    for path in (str(theirs / "clip.mp4"), f"../{theirs.name}/clip.mp4"):
        response = platform.post("/api/videos/", {"path": path}, format="json")
        assert response.status_code == 400, (path, response.status_code, response.content)
        assert "outside this integration's import folder" in response.json()["detail"]
    assert not Video.objects.exists()


def test_a_hard_link_in_a_folder_differing_only_in_case_is_refused(root, platform) -> None:  # type: ignore[no-untyped-def]
    folder = root / f"Integration-{platform.integration.pk}"
    folder.mkdir()
    (root / "elsewhere.mp4").write_bytes(PAYLOAD)
    os.link(root / "elsewhere.mp4", folder / "clip.mp4")
    with pytest.raises(ingest.ImportPathHardLinked):
        ingest.import_file_open(folder / "clip.mp4")


def test_a_model_folder_in_an_integrations_folder_is_refused_whatever_the_case(tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    """The root spelled in another case too: on a case-insensitive mount ``/IMPORTS/`` is the import root."""
    settings.MODELS_DIR = tmp_path
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path / "imports")]
    (tmp_path / "imports").mkdir()
    for folder in (tmp_path / "imports" / "Integration-3" / "model", tmp_path / "IMPORTS" / "integration-3" / "model"):
        folder.mkdir(parents=True)
        with pytest.raises(TrainingError, match="never loaded from a platform's files"):
            model_source_checked(str(folder))
    own = tmp_path / "models" / "Integration-3"  # not under an import root: a folder of MODELS_DIR like any other
    own.mkdir(parents=True)
    assert model_source_checked(str(own)) == str(own)
