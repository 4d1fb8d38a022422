"""Server-side folder ingest and JSONL manifest import, confined to MEDIA_IMPORT_ROOTS."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from moderation.errors import ModerationError
from moderation.media.ingest import video_import_manifest, video_ingest_folder
from moderation.media.models import Video

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def import_root(tmp_path: Path, settings, speech_clip: Path, silent_clip: Path) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "imports"
    (root / "batch" / "sub").mkdir(parents=True)
    shutil.copyfile(speech_clip, root / "batch" / "speech clip.mp4")
    shutil.copyfile(silent_clip, root / "batch" / "sub" / "silent.mp4")
    (root / "batch" / "readme.txt").write_text("not a video")
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    return root


def test_folder_ingest_takes_every_video_once(import_root: Path) -> None:
    report = video_ingest_folder(folder=import_root / "batch")

    assert len(report.created) == 2 and not report.errors
    assert set(Video.objects.values_list("original_filename", "source")) == {
        ("speech clip.mp4", Video.Source.FOLDER),
        ("silent.mp4", Video.Source.FOLDER),
    }
    again = video_ingest_folder(folder=import_root / "batch")
    assert again.created == [] and sorted(again.existing) == sorted(report.created)
    assert Video.objects.count() == 2


def test_folder_ingest_refuses_paths_outside_the_roots(import_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    with pytest.raises(ModerationError, match="outside the import folders"):
        video_ingest_folder(folder=import_root / "batch" / ".." / ".." / "secret")
    with pytest.raises(ModerationError, match="outside the import folders"):
        video_ingest_folder(folder="/etc")
    (import_root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModerationError, match="outside the import folders"):
        video_ingest_folder(folder=import_root / "escape")
    with pytest.raises(ModerationError, match="No such file"):
        video_ingest_folder(folder=import_root / "nope")
    assert not Video.objects.exists()


def test_a_symlinked_file_leading_out_is_reported_and_the_rest_ingested(
    import_root: Path, tmp_path: Path, speech_clip: Path
) -> None:
    outside = tmp_path / "private.mp4"
    outside.write_bytes(b"\x00" * 100)
    (import_root / "batch" / "link.mp4").symlink_to(outside)

    report = video_ingest_folder(folder=import_root / "batch")

    assert len(report.created) == 2
    assert len(report.errors) == 1 and report.errors[0].startswith("link.mp4:") and "outside" in report.errors[0]


def test_folder_ingest_is_disabled_without_roots(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = []
    with pytest.raises(ModerationError, match="MEDIA_IMPORT_ROOTS"):
        video_ingest_folder(folder=tmp_path)


def _write_manifest(root: Path, lines: list[object]) -> Path:
    path = root / "batch" / "manifest.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_manifest_import_stores_metadata_comments_and_cover_and_is_idempotent(
    import_root: Path, text_frames: dict[str, Path]
) -> None:
    shutil.copyfile(text_frames["en"], import_root / "batch" / "cover.jpg")
    manifest = _write_manifest(import_root, [
        {"id": "ext-1", "video": "speech clip.mp4", "title": "Deal", "description": "Cheap phones",
         "uploader": "shop42", "comments": ["scam?", {"text": "dm sent", "user": "u1"}], "cover": "cover.jpg"},
        "{not json",
        {"id": "ext-2", "video": "../../../../etc/passwd"},
        {"id": "ext-3", "video": "missing.mp4"},
        {"title": "no id", "video": "sub/silent.mp4"},
        {"id": "ext-4", "video": "sub/silent.mp4", "comments": "not a list"},
        {"id": "ext-5", "video": "sub/silent.mp4"},
    ])  # fmt: skip

    report = video_import_manifest(manifest=manifest)

    assert len(report.created) == 2
    assert [e.split(":")[0] for e in report.errors] == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    assert "not valid JSON" in report.errors[0] and "outside the import folders" in report.errors[1]
    video = Video.objects.get(external_id="ext-1")
    assert (video.title, video.description, video.uploader) == ("Deal", "Cheap phones", "shop42")
    assert video.comments == ["scam?", "dm sent"] and video.source == Video.Source.MANIFEST
    assert Path(video.cover.path).read_bytes() == text_frames["en"].read_bytes()

    again = video_import_manifest(manifest=manifest)
    assert again.created == [] and sorted(again.existing) == sorted(report.created)
    assert Video.objects.count() == 2


def test_ingest_commands_report_counts_and_errors(import_root: Path) -> None:
    out, err = StringIO(), StringIO()
    call_command("ingest_folder", str(import_root / "batch"), stdout=out, stderr=err)
    assert "2 new, 0 already imported, 0 failed" in out.getvalue()

    manifest = _write_manifest(import_root, [{"id": "m1", "video": "speech clip.mp4"}, "[]"])
    out = StringIO()
    call_command("ingest_manifest", str(manifest), stdout=out, stderr=err)
    assert "0 new, 1 already imported, 1 failed" in out.getvalue()  # same bytes as the folder's video
    assert "line 2: each line must be a JSON object" in err.getvalue()

    with pytest.raises(CommandError, match="outside the import folders"):
        call_command("ingest_manifest", "/etc/hostname", stdout=out, stderr=err)


def test_manifest_lines_that_cannot_be_stored_are_reported_and_the_rest_go_on(import_root: Path) -> None:
    manifest = _write_manifest(import_root, [
        {"id": "x" * 201, "video": "speech clip.mp4"},
        {"id": "m-cover", "video": "speech clip.mp4", "cover": "sub"},  # a folder
        '{"id": "m-ok", "video": "sub/silent.mp4", "title": "a\\ud800b"}',  # a lone surrogate
        "[" * 50_000 + "]" * 50_000,
    ])  # fmt: skip

    report = video_import_manifest(manifest=manifest)

    assert [e.split(": ", 1)[0] for e in report.errors] == ["line 1", "line 2", "line 4"]
    assert "longer than 200 characters" in report.errors[0]
    assert "'cover' is not a file" in report.errors[1]
    assert "not valid JSON" in report.errors[2]
    assert Video.objects.get(pk__in=report.created).title == "a\ufffdb"
