"""Ingest: a video file (an upload, a server path, a folder, a JSONL manifest) becomes a stored Video, queued.

The bytes are streamed to media storage and hashed on the way; processing (moderation.media.pipeline) starts
once the row has committed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from moderation.errors import ModerationError
from moderation.media.models import Video
from workbench import storage
from workbench.queues import enqueue
from workbench.text import shown_name, shown_text, storable_text

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
STEM_MAX_BYTES = 150  # of an uploaded file's name kept in its stored name (``_storage_name``)
# A video's description, as platforms allow theirs (a few thousand characters). It was unbounded: the API and
# manifests took one as large as the request body (10 MB), read by every reviewer on the video's page, put into
# every prompt, and searched for tag names in time that grows with the square of its matches (40 KB of one word
# repeated held a media worker 45 s, 400 KB over an hour).
DESCRIPTION_MAX_CHARS = 5_000
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".3gp", ".wmv"}


def _chunks(source: Any) -> Iterator[bytes]:
    """Read an uploaded file (Django's ``chunks()``) or a binary file object piece by piece."""
    if hasattr(source, "chunks"):
        yield from source.chunks(CHUNK_BYTES)
        return
    while True:
        data = source.read(CHUNK_BYTES)
        if not data:
            return
        yield data


def _stream_to_media(chunks: Iterable[bytes], *, max_bytes: int) -> tuple[Path, str, int]:
    """Copy ``chunks`` into a temporary file under MEDIA_ROOT, hashing as it goes; enforce ``max_bytes``."""
    tmp_dir = Path(settings.MEDIA_ROOT) / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="ingest-", suffix=".part", dir=tmp_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ModerationError(
                        f"This file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB."
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def video_ingest(
    *,
    title: str,
    path: str | Path | None = None,
    upload: Any = None,
    description: str = "",
    uploader: str = "",
    created_by: Any = None,
    external_id: str | None = None,
    source: str = Video.Source.UPLOAD,
    comments: list[str] | None = None,
    cover: Path | None = None,
    refuse_new: str = "",
    confined: bool = False,
) -> Video:
    """Store a video file (a local ``path`` or an ``upload``) and queue it for processing.

    The bytes are streamed to media storage, never held in memory, and hashed on the way; the same
    bytes ingested again return the existing Video (nothing is queued twice). Raises ModerationError
    for a missing source, an empty upload, a file over WORKBENCH_UPLOAD_MAX_BYTES, or an external id
    that already names other bytes; with ``refuse_new``, for bytes not stored yet (that message: the
    caller knows the video they would have to be, e.g. the one a platform's external id names). An empty file on the server (folder or manifest ingest) is kept:
    processing fails it with a readable reason, so the batch's record shows it.

    ``confined``: ``path`` is ``import_path_confined``'s answer, opened following no symlink (``import_file_open``),
    so one swapped in on its way since that check is refused rather than followed out of the allowed folders.
    """
    if (path is None) == (upload is None):
        raise ModerationError("Give exactly one video: a file path or an uploaded file.")
    if len(description or "") > DESCRIPTION_MAX_CHARS:
        raise ModerationError(
            f"The description is {len(description):,} characters long; a video's description may hold at most "
            f"{DESCRIPTION_MAX_CHARS:,}. Nothing was stored."
        )
    max_bytes = int(settings.WORKBENCH_UPLOAD_MAX_BYTES)
    if upload is not None:
        original = Path(getattr(upload, "name", "") or "upload.mp4").name
        declared = getattr(upload, "size", None)
        if declared is not None and declared > max_bytes:
            raise ModerationError(f"This file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB.")
        if declared == 0:
            raise ModerationError("The uploaded file is empty (0 bytes).")
        tmp, sha256, size = _stream_to_media(_chunks(upload), max_bytes=max_bytes)
    else:
        src = Path(path)  # type: ignore[arg-type]
        if not src.is_file():
            raise ModerationError(f"No such file: {src}")
        original = src.name
        with import_file_open(src) if confined else src.open("rb") as fh:
            tmp, sha256, size = _stream_to_media(_chunks(fh), max_bytes=max_bytes)

    # Stored without bidi controls: a title, file name or description must not display as something it is not.
    title, original, description = shown_name(title), shown_name(original), shown_name(description)
    comments = [shown_text(c) for c in comments or []]  # viewer comments, read beside the title
    stored: str | None = None
    try:
        with transaction.atomic():
            # Two ingests of the same bytes at once: the advisory lock makes the second find the first.
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"video-ingest:{sha256}"])
            existing = Video.objects.filter(sha256=sha256).order_by("pk").first()
            if existing is not None:
                tmp.unlink(missing_ok=True)
                return existing
            if refuse_new:
                raise ModerationError(refuse_new)
            if external_id:
                # Two different files under one external id at once (a script's retry with a re-encoded file, two
                # workers of one import): each found the id free and the second's insert was the unique id's
                # IntegrityError, a 500. The later now waits for the earlier and is told the id is taken.
                with connection.cursor() as cur:
                    cur.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"video-external-id:{external_id}"]
                    )
                if Video.objects.filter(external_id=external_id).exists():
                    raise ModerationError(f"External id {external_id!r} already belongs to a different video file.")

            name = _storage_name(original, sha256)
            # Into media storage before the row exists: a row never names a file that is not all there.
            stored = _store(tmp, name)
            video = Video.objects.create(
                title=title.strip()[:500] or Path(original).stem[:500],
                description=description,
                uploader=uploader,
                external_id=external_id or None,
                original_filename=original[:500],
                sha256=sha256,
                size_bytes=size,
                created_by=created_by,
                status=Video.Status.UPLOADED,
                stage=Video.Stage.QUEUED,
                source=source,
                file=name,
                comments=comments,
            )
            if cover is not None:
                video.cover = _store_cover(cover, sha256, confined=confined)
                video.save(update_fields=["cover"])
            _enqueue_processing(video.pk)
    except BaseException:
        # The row did not commit, so the file it would have named must not stay behind.
        tmp.unlink(missing_ok=True)
        if stored is not None:
            with contextlib.suppress(storage.StorageError):
                storage.delete(stored)
        raise
    logger.info("ingested video %s (%s, %d bytes)", video.pk, original, size)
    return video


def _safe(name: str, default: str) -> str:
    try:
        return get_valid_filename(name)
    except SuspiciousFileOperation:  # "..", "" and friends
        return default


def _storage_name(original: str, sha256: str) -> str:
    """videos/YYYY/MM/<hash prefix>-<cleaned name><ext>: unique per content, readable on disk."""
    stem = _safe(Path(original).stem, "video")[:80]
    # At most 80 characters and 150 bytes: 80 CJK characters are 240 bytes of UTF-8, and with the hash prefix a
    # name past the 255 bytes a filesystem allows ("File name too long"), a 500 for a Chinese title as file name.
    stem = stem.encode()[:STEM_MAX_BYTES].decode(errors="ignore") or "video"
    suffix = Path(original).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        # The media view serves files by their extension's type: never store an uploaded .html or .svg as such.
        suffix = ".bin"
    now = timezone.now()
    return f"videos/{now:%Y/%m}/{sha256[:16]}-{stem}{suffix}"


def _store(local: Path, name: str) -> str:
    """Move ``local`` into media storage at ``name``; an unreachable store is a message for the uploader."""
    try:
        return storage.store_file(local, name, move=True)
    except storage.StorageError as exc:
        raise ModerationError(
            f"Media storage is unavailable, so the video was not saved; try again later. ({exc})"
        ) from exc


def _enqueue_processing(video_id: int) -> None:
    enqueue("moderation.media.tasks.process_video", video_id)


_COVER_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _store_cover(cover: Path, sha256: str, *, confined: bool) -> str:
    """Copy ``cover`` into media storage. ``confined`` (a manifest's cover, ``import_path_confined``'s answer): read
    through ``import_file_open`` like the video itself; stored by its path, a cover swapped for a symlink after the
    check was followed, and any file the server could read became the video's cover for every reviewer to fetch."""
    suffix = cover.suffix.lower() if cover.suffix.lower() in _COVER_SUFFIXES else ".jpg"
    name = f"covers/{sha256[:16]}{suffix}"
    with import_file_open(cover) if confined else cover.open("rb") as fh:
        tmp, _digest, _size = _stream_to_media(_chunks(fh), max_bytes=int(settings.WORKBENCH_UPLOAD_MAX_BYTES))
    try:
        return storage.store_file(tmp, name, move=True)
    except storage.StorageError as exc:
        raise ModerationError(f"Media storage is unavailable, so the cover was not saved. ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)


class ImportPathRefused(ModerationError):
    """A server path outside MEDIA_IMPORT_ROOTS. ``roots`` are the folders that are allowed: an operator's
    command names them (``allowed_roots_text``); the API's message to a platform does not list server folders."""

    def __init__(self, message: str, *, roots: list[Path]) -> None:
        super().__init__(message)
        self.roots = roots

    def allowed_roots_text(self) -> str:
        return f"{self} Allowed folders: {', '.join(str(r) for r in self.roots)}."


class ImportPathForbidden(ImportPathRefused):
    """A path inside the roots that its caller may not read: a platform integration's own folder, named by a user who
    does not manage integrations (answered 403)."""


# Each platform integration's own subfolder of every import root (``Integration.import_folder``).
INTEGRATION_FOLDER = re.compile(r"integration-[0-9]+")


def integration_import_folder(integration_id: int) -> str:
    """The subfolder of each of MEDIA_IMPORT_ROOTS that belongs to the integration ``integration_id``."""
    return f"integration-{integration_id}"


def _name_folded(path: Path) -> Path:
    """``path`` as a file system that ignores case compares its names: Unicode-decomposed (NFD, as ext4's casefold
    and APFS compare), case-folded, and without format characters (zero-width joiners and the like, which HFS+
    ignores in a name). Only for the deny rules below: two paths folding alike may be one folder on such a mount."""
    text = unicodedata.normalize("NFD", str(path)).casefold()
    return Path("".join(c for c in text if unicodedata.category(c) != "Cf"))


def _in_integration_folder(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` lies in some integration's folder (``integration-<id>/``) of one of ``roots``, its names
    compared as a case-insensitive mount compares them (``_name_folded``): there ``Integration-7/`` or ``/IMPORTS/``
    is the same folder as ``integration-7/`` under ``/imports/``, and compared as written it passed for a folder of
    no integration (a platform's files read by a user the rule keeps out, a model loaded from them)."""
    folded = _name_folded(path)
    for root in roots:
        folded_root = _name_folded(root)
        if folded.is_relative_to(folded_root):
            parts = folded.relative_to(folded_root).parts
            if parts and INTEGRATION_FOLDER.fullmatch(parts[0]):
                return True
    return False


def import_path_in_integration_folder(path: Path) -> bool:
    """Whether ``path`` (an absolute path), as written or where its symlinks lead, lies in some integration's folder
    of MEDIA_IMPORT_ROOTS: a platform's files, which it writes itself (``Integration.import_folder``)."""
    written = [
        Path(os.path.normpath(Path(r).expanduser().absolute())) for r in settings.MEDIA_IMPORT_ROOTS if str(r).strip()
    ]
    roots = [*written, *(r.resolve() for r in written)]
    try:
        resolved = path.resolve()
    except RuntimeError:  # a symlink loop: nothing to load from it either
        return False
    return _in_integration_folder(Path(os.path.normpath(path)), roots) or _in_integration_folder(resolved, roots)


def import_path_confined(path: str | Path, *, folder: str = "", integration_folders_closed: bool = False) -> Path:
    """``path`` resolved (symlinks followed), refused unless it lies inside one of MEDIA_IMPORT_ROOTS.

    Every server path a user or operator names (folders, manifests, ``ingest_video``, the API's ``path``)
    goes through here: the one home of that rule. ``folder``: the path must lie in that subfolder of a root
    instead (an integration's own, ``Integration.import_folder``, so one platform cannot import another's files),
    and a relative path is taken inside it under the first root. ``integration_folders_closed``: every integration's
    folder is refused too (``ImportPathForbidden``), as written or where its symlinks lead: a user who does not
    manage integrations may not import a platform's files (``moderation.integrations.selectors``)."""
    written = [
        Path(os.path.normpath(Path(r).expanduser().absolute())) for r in settings.MEDIA_IMPORT_ROOTS if str(r).strip()
    ]
    if not written:
        raise ModerationError("Server-side import is disabled: set MEDIA_IMPORT_ROOTS to the folders it may read.")
    if folder:
        written = [root / folder for root in written]
    roots = [r.resolve() for r in written]
    if folder:
        outside = ImportPathRefused(
            f"{path} is outside this integration's import folder ({folder}/ in the server's import folders); "
            "paths with '..' or symlinks that lead out of it are refused.",
            roots=written,
        )
    else:
        outside = ImportPathRefused(
            f"{path} is outside the import folders (MEDIA_IMPORT_ROOTS); "
            "paths with '..' or symlinks that lead out of them are refused.",
            roots=written,
        )
    # Twice: '..' judged on the path as written (so a missing target outside is still "outside"),
    # then symlinks judged on the real path.
    try:
        named = Path(path).expanduser()
    except RuntimeError:  # "~someone/…" naming a user this server does not have: no such home, so not in the roots
        raise outside from None
    if folder and not named.is_absolute():
        named = written[0] / named
    lexical = Path(os.path.normpath(named.absolute()))
    if not any(lexical.is_relative_to(root) for root in [*written, *roots]):
        raise outside
    try:
        # Not strict: a symlink to a file that does not exist resolves to where it points, so one leading out is
        # "outside" whether or not its target exists (strict, a dangling one was "No such file": an oracle for
        # which files exist anywhere on the server).
        resolved = lexical.resolve()
    except RuntimeError as exc:  # a symlink loop
        raise ModerationError(f"No such file or folder: {path}") from exc
    if not any(resolved.is_relative_to(root) for root in roots):
        raise outside
    if integration_folders_closed and (
        _in_integration_folder(lexical, [*written, *roots]) or _in_integration_folder(resolved, roots)
    ):
        raise ImportPathForbidden(
            f"{path} is in a platform integration's import folder (integration-<id>/ in the server's import "
            "folders): its files are that platform's, and only admins (who manage integrations) may import them. "
            "Put the file elsewhere in the import folders.",
            roots=written,
        )
    try:
        resolved.stat()
    except OSError as exc:
        raise ModerationError(_path_unreadable_text(path, exc)) from exc
    return resolved


def _path_unreadable_text(path: str | Path, exc: OSError) -> str:
    """Why a confined path cannot be read, in words (a name too long was a 500: ``OSError: File name too long``)."""
    if exc.errno == errno.ENAMETOOLONG:
        return f"This path is too long for the server's file system: {str(path)[:200]}…"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"The server may not read this file or folder: {path}"
    return f"No such file or folder: {path}"


class ImportPathChanged(ModerationError):
    """A path ``import_path_confined`` accepted had a symlink on its way when it was opened (swapped in since)."""


class ImportPathHardLinked(ImportPathChanged):
    """A file in an integration's import folder with more than one hard link: the path rules see only its name, so
    a platform that writes its own folder could link another's (or any) file on the same file system into it."""


def import_file_open(path: Path) -> BinaryIO:
    """Open for reading a file that ``import_path_confined`` resolved (no symlink left on its way), following no
    symlink: each folder from ``/`` is opened with ``O_NOFOLLOW`` under the one before (``openat``), so a folder or
    the file swapped for a symlink between the check and this opening (a platform that writes to its own import
    folder racing its submission) is refused (``ImportPathChanged``) instead of leading the read to another's or any
    readable file. Only a regular file is opened (a FIFO swapped in would block the request for ever). In an
    integration's folder (``integration-<id>/``) a file with more than one hard link is refused
    (``ImportPathHardLinked``): a hard link is no symlink, so no path rule sees where else the file lives."""
    parts = path.parts
    if not path.is_absolute() or len(parts) < 2:
        raise ModerationError(f"No such file: {path}")
    nofollow = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    changed = ImportPathChanged(
        f"{path} changed while it was being imported (a folder or the file on its way is now a symlink, or not a "
        "file): nothing was imported."
    )
    # O_PATH where there is one (Linux): a folder is walked through, as a path lookup does, with search permission
    # only (its read permission is not needed); a symlink in its place is not a folder (ENOTDIR).
    walk = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY
    folder = os.open(parts[0], walk)
    try:
        for part in parts[1:-1]:
            below = os.open(part, walk | nofollow, dir_fd=folder)
            os.close(folder)
            folder = below
        opened = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise changed from exc
        raise ModerationError(_path_unreadable_text(path, exc)) from exc
    finally:
        os.close(folder)
    opened_stat = os.fstat(opened)
    if not stat.S_ISREG(opened_stat.st_mode):
        os.close(opened)
        raise changed
    if opened_stat.st_nlink > 1 and import_path_in_integration_folder(path):
        os.close(opened)
        raise ImportPathHardLinked(
            f"{path.name} is a hard link (the file has another name on the server): a file in a platform "
            "integration's import folder must be a file of its own, not another name for a file elsewhere. Copy "
            "the file into the folder instead; nothing was imported."
        )
    return os.fdopen(opened, "rb")


@dataclass
class ImportReport:
    """What a bulk import did: new videos, ones already there, and per-item errors (the batch goes on)."""

    created: list[int] = field(default_factory=list)
    existing: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.created)} new, {len(self.existing)} already imported, {len(self.errors)} failed"


def video_ingest_folder(*, folder: str | Path, created_by: Any = None) -> ImportReport:
    """Ingest every video file under ``folder`` (recursively), which must lie inside MEDIA_IMPORT_ROOTS.

    Files are visited in name order; a file whose real path leaves the roots (a symlink out) and any
    file that fails to ingest are reported and skipped. The same bytes twice give the same video.
    """
    root = import_path_confined(folder)
    if not root.is_dir():
        raise ModerationError(f"{folder} is not a folder.")
    report = ImportReport()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        shown = path.relative_to(root)
        try:
            real = import_path_confined(path)
            if not real.is_file():
                continue
            before = Video.objects.filter(sha256=_sha256_of(real)).values_list("pk", flat=True).first()
            video = video_ingest(
                path=real, title=path.stem, created_by=created_by, source=Video.Source.FOLDER, confined=True
            )
        except ModerationError as exc:
            report.errors.append(f"{shown}: {exc}")
            continue
        (report.existing if before == video.pk else report.created).append(video.pk)
    return report


def _sha256_of(path: Path) -> str:
    """The hash of a file ``import_path_confined`` accepted, read following no symlink (``import_file_open``): by
    its path, one swapped in after the check was read (a file outside the roots hashed, a FIFO waited on for ever,
    a folder a traceback that ended the whole import)."""
    digest = hashlib.sha256()
    with import_file_open(path) as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_comments(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ModerationError("'comments' must be a list.")
    out = []
    for item in value:
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise ModerationError("each comment must be a string or an object with a 'text' string.")
        if text.strip():
            out.append(text.strip())
    return out


def video_import_manifest(*, manifest: str | Path, created_by: Any = None) -> ImportReport:
    """Bulk import from a JSONL manifest, one video per line, idempotent by external id.

    A line is ``{"id", "video", "title", "description", "uploader", "comments", "cover"}``; ``id``
    (or ``external_id``) and ``video`` are required. Relative paths are read from the manifest's
    folder; every path must stay inside MEDIA_IMPORT_ROOTS. A line whose id was imported before is
    counted as existing and left alone; a bad line is reported with its number and the rest go on.
    """
    manifest_path = import_path_confined(manifest)
    base = manifest_path.parent
    report = ImportReport()
    if not manifest_path.is_file():  # a folder (``ingest_folder``'s argument): an IsADirectoryError traceback before
        raise ModerationError(f"{manifest} is not a file: a manifest is a JSONL file, one video per line.")
    # Opened once, following no symlink (``import_file_open``), as the files it names are: opened by its path, a
    # manifest in a platform's import folder swapped for a symlink after the check led the import to another
    # platform's manifest (its videos ingested under this one's ids) or any file the server could read.
    with import_file_open(manifest_path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                pk, created = _manifest_line(line, base=base, created_by=created_by)
            except ModerationError as exc:
                report.errors.append(f"line {number}: {exc}")
                continue
            (report.created if created else report.existing).append(pk)
    return report


EXTERNAL_ID_MAX = Video._meta.get_field("external_id").max_length or 200


def _manifest_line(line: str, *, base: Path, created_by: Any) -> tuple[int, bool]:
    try:
        item = storable_text(json.loads(line))
    except json.JSONDecodeError as exc:
        raise ModerationError(f"not valid JSON ({exc.msg}).") from exc
    except (ValueError, RecursionError) as exc:  # nested too deeply, or a number too long to read
        raise ModerationError(f"not valid JSON ({type(exc).__name__}).") from exc
    if not isinstance(item, dict):
        raise ModerationError("each line must be a JSON object.")
    external_id = str(item.get("external_id") or item.get("id") or "").strip()
    if not external_id:
        raise ModerationError("'id' is missing.")
    if len(external_id) > EXTERNAL_ID_MAX:
        raise ModerationError(f"'id' is longer than {EXTERNAL_ID_MAX} characters.")
    existing = Video.objects.filter(external_id=external_id).values_list("pk", flat=True).first()
    if existing is not None:
        return existing, False
    video_path = item.get("video") or item.get("video_path")
    if not isinstance(video_path, str) or not video_path.strip():
        raise ModerationError("'video' (the video file's path) is missing.")
    video_file = import_path_confined(base / video_path)
    cover = None
    if item.get("cover"):
        cover = import_path_confined(base / str(item["cover"]))
        if not cover.is_file():
            raise ModerationError(f"'cover' is not a file: {item['cover']}")
    fields = {k: item.get(k) or "" for k in ("title", "description", "uploader")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ModerationError("'title', 'description' and 'uploader' must be strings.")
    video = video_ingest(
        path=video_file, title=fields["title"] or video_file.stem, description=fields["description"],
        uploader=fields["uploader"][:200], external_id=external_id, source=Video.Source.MANIFEST,
        comments=_manifest_comments(item.get("comments")), cover=cover, created_by=created_by, confined=True,
    )  # fmt: skip
    # The same bytes under another id return that other video: counted as existing, not created.
    return video.pk, video.external_id == external_id
