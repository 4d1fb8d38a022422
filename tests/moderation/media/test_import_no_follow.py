"""The folder import's pre-hash and a manifest's cover are opened following no symlink, as the video itself is
(``import_file_open``): both were opened by path, so a file or folder swapped for a symlink between the path's
check (``import_path_confined``) and the opening led the read out of MEDIA_IMPORT_ROOTS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation.media import ingest
from moderation.media.models import Video

pytestmark = pytest.mark.django_db

CLIP = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096


@pytest.fixture
def roots(tmp_path: Path, settings) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    root, outside = tmp_path / "imports", tmp_path / "private"
    (root / "batch").mkdir(parents=True)
    outside.mkdir()
    settings.MEDIA_IMPORT_ROOTS = [str(root)]
    return root / "batch", outside


def _swap_after_check(monkeypatch, *, name: str, target: Path) -> None:  # type: ignore[no-untyped-def]
    """The file called ``name`` becomes a symlink to ``target`` the instant after its path is checked."""
    real_check = ingest.import_path_confined

    def check_then_swap(path, **kwargs):  # type: ignore[no-untyped-def]
        resolved = real_check(path, **kwargs)
        if resolved.name == name:
            resolved.unlink()
            resolved.symlink_to(target, target_is_directory=target.is_dir())
        return resolved

    monkeypatch.setattr(ingest, "import_path_confined", check_then_swap)


def test_a_manifest_cover_swapped_for_a_symlink_after_the_check_is_not_stored(roots, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    batch, outside = roots
    (batch / "clip.mp4").write_bytes(CLIP)
    (batch / "cover.jpg").write_bytes(b"\xff\xd8 the real cover")
    (outside / "secret.jpg").write_bytes(b"SERVER-SECRET")
    (batch / "manifest.jsonl").write_text(json.dumps({"id": "m1", "video": "clip.mp4", "cover": "cover.jpg"}) + "\n")
    _swap_after_check(monkeypatch, name="cover.jpg", target=outside / "secret.jpg")

    report = ingest.video_import_manifest(manifest=batch / "manifest.jsonl")

    # Stored by its path, the secret became the new video's cover, served to every reviewer.
    assert report.created == [] and len(report.errors) == 1, report
    assert report.errors[0].startswith("line 1:") and "symlink" in report.errors[0]
    assert not Video.objects.exists()
    stored = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file() and not p.is_symlink()]
    assert not any(p.read_bytes() == b"SERVER-SECRET" for p in stored)


def test_a_folder_import_file_swapped_for_a_symlink_after_the_check_is_not_read(roots, monkeypatch) -> None:
    batch, outside = roots
    (batch / "a.mp4").write_bytes(CLIP + b"a")
    (batch / "b.mp4").write_bytes(CLIP + b"b")
    (outside / "secret.mp4").write_bytes(b"SERVER-SECRET")
    _swap_after_check(monkeypatch, name="a.mp4", target=outside / "secret.mp4")
    opened: list[str] = []
    real_open = Path.open

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy)

    # By its path, the pre-hash read the file outside the roots (the video's own opening then refused it).
    report = ingest.video_ingest_folder(folder=batch)

    assert len(report.created) == 1 and len(report.errors) == 1, report
    assert report.errors[0].startswith("a.mp4:") and "symlink" in report.errors[0]
    assert Video.objects.get().original_filename == "b.mp4"
    assert not [p for p in opened if p.endswith("a.mp4")]


def test_a_manifest_swapped_for_a_symlink_after_the_check_is_not_read(roots, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The manifest itself was opened by its path after ``import_path_confined`` checked it: one in a platform's
    import folder swapped for a symlink in between (to another platform's manifest, or any file the server reads)
    was read, its lines ingested under this folder's import. It is opened once now, following no symlink."""
    batch, outside = roots
    (batch / "clip.mp4").write_bytes(CLIP)
    (batch / "manifest.jsonl").write_text(json.dumps({"id": "mine", "video": "clip.mp4"}) + "\n")
    other = outside / "theirs.jsonl"
    other.write_text(json.dumps({"id": "stolen", "video": str(batch / "clip.mp4"), "title": "SWAPPED"}) + "\n")
    _swap_after_check(monkeypatch, name="manifest.jsonl", target=other)

    with pytest.raises(ingest.ImportPathChanged, match="symlink"):
        ingest.video_import_manifest(manifest=batch / "manifest.jsonl")

    assert (batch / "manifest.jsonl").is_symlink()  # swapped after the check
    assert not Video.objects.exists()


def test_a_manifest_read_through_the_safe_opener_still_imports_its_lines(roots) -> None:  # type: ignore[no-untyped-def]
    batch, _outside = roots
    (batch / "clip.mp4").write_bytes(CLIP)
    # Bytes that are not UTF-8 still become U+FFFD in their field, not a failed import.
    (batch / "manifest.jsonl").write_bytes(
        json.dumps({"id": "m1", "video": "clip.mp4"}).encode() + b"\n\n" + b'{"id": "m2", "video": "\xff.mp4"}\n'
    )

    report = ingest.video_import_manifest(manifest=batch / "manifest.jsonl")

    assert len(report.created) == 1 and len(report.errors) == 1, report
    assert report.errors[0].startswith("line 3:") and "\ufffd" in report.errors[0]
