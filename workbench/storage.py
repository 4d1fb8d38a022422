"""Media storage: the local filesystem (the embedded default) or an S3-compatible object store.

Nothing outside this module assumes a shared disk. A worker asks ``local_copy()`` for a path it can hand
to ffmpeg or a model: with local storage that is the stored file itself (no copy, today's speed); with
object storage it is a download into this node's scratch folder (``scratch_dir()``, removed when the work
is done). Results go back with ``store_file()``; ``delete_prefix()`` clears what a redelivered task
replaces. Object keys are the same names ``FileField`` stores, so the database never says which backend
holds a file. Errors come out as two kinds a caller can act on: ``MediaMissing`` (the object is gone:
tell the user) and ``StorageUnavailable`` (the store did not answer: retry later).

Browsers never read the bucket anonymously: ``MediaS3Storage.url()`` points at the role-checked media view,
which answers with a redirect to a presigned URL valid for ``MEDIA_URL_EXPIRE_SECONDS``; S3 serves Range
requests on it, so the player seeks without Django streaming the video.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.files.storage import default_storage


class StorageError(Exception):
    """A media storage operation failed; the message says what, for a user or an operator."""


class MediaMissing(StorageError):
    """The stored object (or file) named by a row does not exist."""


class StorageUnavailable(StorageError):
    """The object store did not answer, refused the credentials or failed: the work can be retried."""


# MEDIA_S3_ADDRESSING_STYLE: botocore's (Config(s3={"addressing_style": ...}) refuses any other, at the first use of
# the store). Checked at every start (workbench.checks.SETTING_CHOICES).
S3_ADDRESSING_STYLES = ("path", "virtual", "auto")

# A task that cannot reach the store is retried with growing pauses (5 s … 5 min), about an hour in all:
# the media and inference tasks and re-queued training jobs alike.
STORAGE_RETRIES = 16


def storage_retry_delay(retries: int) -> int:
    return int(min(5 * 2**retries, 300))


def is_object_storage() -> bool:
    return str(settings.MEDIA_STORAGE) == "s3"


@cache
def _s3_storage_class() -> type:
    from storages.backends.s3 import S3Storage

    class _MediaS3Storage(S3Storage):  # type: ignore[misc]
        def __init__(self, **kwargs: Any) -> None:
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config

            kwargs.setdefault(
                "client_config",
                Config(
                    s3={"addressing_style": kwargs.get("addressing_style") or "path"},
                    signature_version="s3v4",
                    connect_timeout=float(settings.MEDIA_S3_CONNECT_TIMEOUT),
                    read_timeout=float(settings.MEDIA_S3_READ_TIMEOUT),
                    retries={"max_attempts": int(settings.MEDIA_S3_MAX_ATTEMPTS), "mode": "standard"},
                ),
            )
            # 16 MiB parts: one part for a typical short video, few requests for a long one.
            kwargs.setdefault(
                "transfer_config", TransferConfig(multipart_threshold=16 * 2**20, multipart_chunksize=16 * 2**20)
            )
            super().__init__(**kwargs)

        def url(self, name: str, parameters: Any = None, expire: Any = None, http_method: Any = None) -> str:
            """The role-checked media view; it redirects to a presigned URL (see ``presigned_url``)."""
            return "/" + str(settings.MEDIA_URL).strip("/") + "/" + quote(name.lstrip("/"))

        def presigned_url(self, name: str, *, expire: int | None = None) -> str:
            key = self._normalize_name(name)
            content_type = content_type_of(name)
            return str(
                _public_client(self).generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket_name, "Key": key, "ResponseContentType": content_type},
                    ExpiresIn=int(expire or settings.MEDIA_URL_EXPIRE_SECONDS),
                )
            )

        def key(self, name: str) -> str:
            return str(self._normalize_name(name))

        @property
        def client(self) -> Any:
            return self.connection.meta.client

    return _MediaS3Storage


def __getattr__(name: str) -> Any:
    # ``STORAGES`` names ``workbench.storage.MediaS3Storage``; boto3 is imported only when it is used.
    if name == "MediaS3Storage":
        return _s3_storage_class()
    raise AttributeError(name)


@cache
def _public_client_for(endpoint: str, region: str, access_key: str, secret_key: str, style: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session(aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None).client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )


def _public_client(storage: Any) -> Any:
    """Signing needs no network; with a public endpoint the URL must name the host browsers reach."""
    public = str(settings.MEDIA_S3_PUBLIC_ENDPOINT_URL)
    if not public:
        return storage.connection.meta.client
    return _public_client_for(
        public, storage.region_name or "", storage.access_key or "", storage.secret_key or "", storage.addressing_style
    )


def _translate(exc: BaseException, name: str) -> StorageError:
    """boto/botocore errors as MediaMissing or StorageUnavailable with a readable message."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"404", "NoSuchKey", "NotFound"} or status == 404:
            return MediaMissing(f"{name} is missing from the object store.")
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"} or status == 403:
            return StorageUnavailable(f"The object store refused access to {name} ({code or status}).")
        return StorageUnavailable(f"The object store failed on {name}: {code or status}.")
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"The object store is unreachable ({type(exc).__name__}) while handling {name}.")
    return StorageUnavailable(f"Storage failed on {name}: {type(exc).__name__}: {exc}")


def _boto_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, ConnectionError, TimeoutError)


# Below this size a file goes up in one PUT (the transfer config's multipart threshold, 16 MiB).
_MULTIPART_THRESHOLD = 16 * 2**20
_PARALLEL_PUTS = 8
_COPY_CHUNK = 2**20


# --- Scratch --------------------------------------------------------------------------------------


def scratch_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "scratch"


@contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    """A fresh folder on this node for one piece of work, removed afterwards whatever happens."""
    root = scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- Reading --------------------------------------------------------------------------------------


def local_copy(name: str | None, scratch: Path) -> Path:
    """A local path holding the stored file ``name``: the file itself with local storage, else a
    download into ``scratch`` (reused when the same name was fetched into it before)."""
    if not name:
        raise MediaMissing("No file is stored for this item.")
    if not is_object_storage():
        path = Path(default_storage.path(name))
        if not path.is_file():
            raise MediaMissing(f"{name} is missing from media storage.")
        return path
    target = scratch / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return local_copy_to(name, target)


def exists(name: str) -> bool:
    if not name:
        return False
    try:
        return bool(default_storage.exists(name))
    except _boto_errors() as exc:
        raise _translate(exc, name) from exc


def missing_names(names: Iterable[str]) -> set[str]:
    """Which of the stored ``names`` do not exist (empty names are skipped).

    Object storage: one listing per folder holding three or more of the names (a video's keyframes are
    one request), a HEAD for the others. Raises StorageUnavailable when the store does not answer."""
    wanted = sorted({n for n in names if n})
    if not is_object_storage():
        return {n for n in wanted if not Path(default_storage.path(n)).is_file()}
    by_folder: dict[str, list[str]] = {}
    for name in wanted:
        by_folder.setdefault(name.rpartition("/")[0], []).append(name)
    storage: Any = default_storage
    missing: set[str] = set()
    for folder, group in by_folder.items():
        if folder and len(group) >= 3:
            present = set(list_names(folder + "/"))
            missing.update(n for n in group if n not in present)
            continue
        for name in group:
            try:
                storage.client.head_object(Bucket=storage.bucket_name, Key=storage.key(name))
            except _boto_errors() as exc:
                error = _translate(exc, name)
                if not isinstance(error, MediaMissing):
                    raise error from exc
                missing.add(name)
    return missing


# --- This node's cache (inference workers: keyframes for prompts, adapters) ------------------------

# A model version registered from object storage names its adapter "stored:<prefix>".
STORED_PREFIX = "stored:"
_downloads_since_trim = 0


def cache_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "cache"


def cached_copy(name: str | None) -> Path:
    """A local path of the stored file ``name`` that outlives the task: the file itself with local
    storage, else a copy in this node's cache (downloaded once; the cache is trimmed to MEDIA_CACHE_MAX_BYTES)."""
    if not name:
        raise MediaMissing("No file is stored for this item.")
    if not is_object_storage():
        return Path(default_storage.path(name))
    target = cache_root() / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    local_copy_to(name, target)
    _count_download()
    return target


def resolve_stored_path(value: str) -> str:
    """A local folder for an artifact path: ``value`` itself unless it is ``stored:<prefix>``, which is
    downloaded once into this node's cache (complete or not at all) and reused by later tasks."""
    if not value.startswith(STORED_PREFIX):
        return value
    prefix = value[len(STORED_PREFIX) :].strip("/")
    target = cache_root() / prefix
    if (target / ".complete").exists():
        return str(target)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    partial.mkdir(parents=True)
    try:
        if not fetch_tree(prefix, partial):
            raise MediaMissing(f"{prefix} is missing from media storage.")
        (partial / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _count_download()
    return str(target)


def _count_download() -> None:
    global _downloads_since_trim
    _downloads_since_trim += 1
    if _downloads_since_trim >= 100:
        _downloads_since_trim = 0
        trim_cache(int(settings.MEDIA_CACHE_MAX_BYTES))


def trim_cache(max_bytes: int) -> int:
    """Delete the least recently used cached files until the cache holds at most ``max_bytes``; returns
    the bytes freed. Whole adapter folders go together (a half-deleted adapter would not load)."""
    root = cache_root()
    if not root.is_dir():
        return 0
    entries: list[tuple[float, int, Path]] = []
    for path in root.rglob("*"):
        if path.is_dir() and (path / ".complete").exists():
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            entries.append(((path / ".complete").stat().st_atime, size, path))
        elif path.is_file() and not any((parent / ".complete").exists() for parent in path.parents if parent != root):
            stat = path.stat()
            entries.append((stat.st_atime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total - freed <= max_bytes:
            break
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        freed += size
    return freed


# --- Model artifacts one process writes and another reads ------------------------------------------

# A stage-1 model trained on one worker is used by the infer worker in another container, and what the
# bench wrote is drawn by the web process: no two of them share a disk (MODELS_DIR is each node's own),
# so such artifacts live in media storage under "models/" (never served: not a SERVED_MEDIA_FOLDERS name).
ARTIFACT_FOLDER = "models"
_artifact_lock = threading.Lock()
# (store, name) -> (monotonic time the store was asked, the caller's hint then, local path or None when absent)
_artifact_seen: dict[tuple[str, str], tuple[float, str, Path | None]] = {}


def _artifact_key(name: str) -> tuple[str, str]:
    store = f"s3:{settings.MEDIA_S3_BUCKET}" if is_object_storage() else f"local:{settings.MEDIA_ROOT}"
    return (store, name)


def artifact_name(relative: str) -> str:
    """The stored name of the shared artifact ``relative`` (e.g. ``cascade/default.joblib``)."""
    return f"{ARTIFACT_FOLDER}/{relative.lstrip('/')}"


def artifact_store(local: Path, name: str, *, move: bool = False) -> str:
    """Publish the finished file ``local`` as the shared artifact ``name`` (atomic, see ``store_file``);
    this process reads the new one at once, the others at their next check."""
    store_file(local, name, move=move)
    with _artifact_lock:
        _artifact_seen.pop(_artifact_key(name), None)
    return name


def artifact_upload_if_absent(local: Path, name: str) -> bool:
    """Upload the local file ``local`` as the shared artifact ``name`` unless the store holds one already (a
    newer one trained elsewhere is never replaced); True when uploaded. Idempotent.
    Raises StorageUnavailable when the store does not answer."""
    if _artifact_version(name) is not None:
        return False
    store_file(local, name)
    with _artifact_lock:
        _artifact_seen.pop(_artifact_key(name), None)
    return True


def _artifact_version(name: str) -> str | None:
    """What changes whenever ``name`` is replaced (the ETag; locally mtime and size), None when absent."""
    if not is_object_storage():
        try:
            stat = Path(default_storage.path(name)).stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_mtime_ns}-{stat.st_size}"
    storage: Any = default_storage
    try:
        head = storage.client.head_object(Bucket=storage.bucket_name, Key=storage.key(name))
    except _boto_errors() as exc:
        error = _translate(exc, name)
        if isinstance(error, MediaMissing):
            return None
        raise error from exc
    return str(head.get("ETag") or head.get("LastModified"))


def artifact_local(name: str, *, legacy: Path | None = None, hint: str = "") -> Path | None:
    """A local path holding the current shared artifact ``name``, or None when none is stored.

    The store is asked at most once per ``MODEL_ARTIFACT_CHECK_S`` seconds per process, and at once when
    ``hint`` (what the database says about the artifact, e.g. its model row's ``trained_at``) differs
    from the last call's. With object storage the file is downloaded into this node's cache and kept
    until the stored object changes; with local storage it is the stored file itself.

    ``legacy``: where this node kept the file before artifacts were shared (under MODELS_DIR). When the
    store has none and that file exists it is uploaded once, so an upgrade loses no trained model.
    Raises StorageUnavailable when the store does not answer."""
    now, key = time.monotonic(), _artifact_key(name)
    with _artifact_lock:
        seen = _artifact_seen.get(key)
    if (
        seen is not None
        and seen[1] == hint
        and now - seen[0] < float(settings.MODEL_ARTIFACT_CHECK_S)
        and (seen[2].is_file() if seen[2] is not None else not (legacy is not None and legacy.is_file()))
    ):
        return seen[2]
    version = _artifact_version(name)
    if version is None and legacy is not None and legacy.is_file():
        store_file(legacy, name)
        version = _artifact_version(name)
    path: Path | None
    if version is None:
        path = None
    elif not is_object_storage():
        path = Path(default_storage.path(name))
    else:
        path = cache_root() / name
        marker = path.with_name(f".{path.name}.version")
        try:
            current = path.is_file() and marker.read_text() == version
        except OSError:
            current = False
        if not current:
            path.parent.mkdir(parents=True, exist_ok=True)
            local_copy_to(name, path)
            marker.write_text(version)
            _count_download()
    with _artifact_lock:
        _artifact_seen[key] = (now, hint, path)
    return path


# --- Writing --------------------------------------------------------------------------------------


def store_file(local: Path, name: str, *, move: bool = False) -> str:
    """Put the local file ``local`` at ``name`` (replacing what is there) and return ``name``.

    With object storage the upload is one PUT (multipart above 16 MiB), so readers see the old object
    or the whole new one, never part of it; with local storage the file is renamed into place.
    """
    if not is_object_storage():
        target = Path(default_storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.replace(local, target)
        else:
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
            shutil.copyfile(local, partial)
            os.replace(partial, target)
        return name
    storage: Any = default_storage
    _put(storage, storage.client, local, name)
    if move:
        local.unlink(missing_ok=True)
    return name


# The types of the files the media view serves (videos of the accepted suffixes, covers, keyframes), fixed here: the
# host's MIME table (/etc/mime.types, which ``mimetypes`` reads) made an uploaded MPEG-TS video (.ts)
# ``text/vnd.trolltech.linguist``, an uploader's bytes served as text from the site's origin, and a .3gp audio.
MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".flv": "video/x-flv",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".wmv": "video/x-ms-wmv",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


def content_type_of(name: str, *, media: bool = False) -> str:
    """The ``Content-Type`` a stored file is served with: ``MEDIA_TYPES`` by its suffix; else, for a file of the media
    view (``media``), ``application/octet-stream`` (a download, never something a browser renders), for any other
    (training artifacts) the host's MIME table's guess."""
    known = MEDIA_TYPES.get(PurePosixPath(name).suffix.lower())
    if known or media:
        return known or "application/octet-stream"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _put(storage: Any, client: Any, local: Path, name: str) -> None:
    """Upload ``local`` to ``name`` with ``client`` (boto3 clients are thread-safe; django-storages makes
    one per thread, which costs a session each, so parallel uploads share the caller's)."""
    content_type = content_type_of(name)
    try:
        if local.stat().st_size < _MULTIPART_THRESHOLD:
            # One PUT; boto3's upload_file would start a transfer manager (a thread pool) per file.
            with local.open("rb") as body:
                client.put_object(
                    Bucket=storage.bucket_name, Key=storage.key(name), Body=body, ContentType=content_type
                )
        else:
            client.upload_file(
                str(local),
                storage.bucket_name,
                storage.key(name),
                ExtraArgs={"ContentType": content_type},
                Config=storage.transfer_config,
            )
    except _boto_errors() as exc:
        raise _translate(exc, name) from exc


def store_tree(local_dir: Path, prefix: str) -> list[str]:
    """Upload every file under ``local_dir`` to ``prefix/<relative path>``; returns the names.

    With object storage the PUTs run ``_PARALLEL_PUTS`` at a time (a video's 30 keyframes cost about
    the latency of four requests, not thirty); the first failure is raised after the others finished."""
    paths = sorted(p for p in local_dir.rglob("*") if p.is_file())
    names = [f"{prefix.rstrip('/')}/{path.relative_to(local_dir).as_posix()}" for path in paths]
    if not is_object_storage() or len(paths) < 2:
        return [store_file(path, name) for path, name in zip(paths, names, strict=True)]
    from concurrent.futures import ThreadPoolExecutor

    storage: Any = default_storage
    client = storage.client
    with ThreadPoolExecutor(max_workers=min(_PARALLEL_PUTS, len(paths))) as pool:
        futures = [pool.submit(_put, storage, client, path, name) for path, name in zip(paths, names, strict=True)]
    for future in futures:
        future.result()
    return names


def fetch_tree(prefix: str, local_dir: Path) -> list[Path]:
    """Download every object under ``prefix/`` into ``local_dir`` (keeping the relative layout)."""
    prefix = prefix.rstrip("/") + "/"
    if not is_object_storage():
        source = Path(default_storage.path(prefix))
        if not source.is_dir():
            return []
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        return sorted(p for p in local_dir.rglob("*") if p.is_file())
    out = []
    for name in list_names(prefix):
        relative = name[len(prefix) :]
        target = local_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        out.append(local_copy_to(name, target))
    return out


def local_copy_to(name: str, target: Path) -> Path:
    """Download ``name`` to exactly ``target`` (replacing it atomically: a reader sees the old file or the
    whole new one). One streamed GET: a short video or a keyframe is one request, where boto3's
    ``download_file`` would add a HEAD and a thread pool per call."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    storage: Any = default_storage
    try:
        body = storage.client.get_object(Bucket=storage.bucket_name, Key=storage.key(name))["Body"]
        with body, partial.open("wb") as out:
            shutil.copyfileobj(body, out, _COPY_CHUNK)
    except _boto_errors() as exc:
        partial.unlink(missing_ok=True)
        raise _translate(exc, name) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target


def list_names(prefix: str) -> list[str]:
    """Every stored name in the folder ``prefix`` and below (object storage: a paginated listing).

    ``prefix`` is a folder whether or not it ends in "/": ``keyframes/1`` never lists ``keyframes/10/…``."""
    prefix = prefix.rstrip("/") + "/"
    if not is_object_storage():
        root = Path(default_storage.path(prefix))
        base = Path(settings.MEDIA_ROOT)
        return sorted(p.relative_to(base).as_posix() for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    storage: Any = default_storage
    key_prefix = storage.key(prefix)
    strip = len(key_prefix) - len(prefix)
    names: list[str] = []
    try:
        for page in storage.client.get_paginator("list_objects_v2").paginate(
            Bucket=storage.bucket_name, Prefix=key_prefix
        ):
            names += [obj["Key"][strip:] for obj in page.get("Contents", [])]
    except _boto_errors() as exc:
        raise _translate(exc, prefix) from exc
    return sorted(names)


def delete_prefix(prefix: str) -> None:
    """Remove everything stored under ``prefix/`` (a video's keyframes before they are rewritten)."""
    prefix = prefix.rstrip("/") + "/"
    if not is_object_storage():
        shutil.rmtree(Path(default_storage.path(prefix)), ignore_errors=True)
        return
    storage: Any = default_storage
    names = list_names(prefix)
    try:
        for start in range(0, len(names), 1000):
            batch = [{"Key": storage.key(n)} for n in names[start : start + 1000]]
            storage.client.delete_objects(Bucket=storage.bucket_name, Delete={"Objects": batch, "Quiet": True})
    except _boto_errors() as exc:
        raise _translate(exc, prefix) from exc


def delete(name: str) -> None:
    try:
        default_storage.delete(name)
    except _boto_errors() as exc:
        raise _translate(exc, name) from exc


# --- Playback -------------------------------------------------------------------------------------


def playback_url(name: str) -> str:
    """Where a signed-in, role-checked browser fetches ``name`` from: a short-lived presigned URL."""
    storage: Any = default_storage
    return str(storage.presigned_url(name))


@cache
def _origin_for(endpoint: str, region: str, style: str, bucket: str) -> str:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region or None,
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": style}),
    )
    url = urlsplit(str(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "origin"})))
    return f"{url.scheme}://{url.netloc}"


def playback_origin() -> str | None:
    """The origin (``scheme://host[:port]``) of the presigned URLs ``playback_url`` hands out, or None with local
    storage (media come from this site).

    The media view redirects a page's ``<video>`` and ``<img>`` there, so the Content-Security-Policy allows exactly
    this origin for media and images (``workbench.csp``). botocore decides the host (the public endpoint, the
    endpoint, or AWS's regional or global name; the bucket in the host with virtual addressing), so it is asked
    with the storage's own settings, unsigned: no credentials and no network."""
    if not is_object_storage():
        return None
    storage: Any = default_storage
    endpoint = str(settings.MEDIA_S3_PUBLIC_ENDPOINT_URL) or (storage.endpoint_url or "")
    return _origin_for(endpoint, storage.region_name or "", storage.addressing_style or "path", storage.bucket_name)


# --- Start-up check -------------------------------------------------------------------------------


def storage_check() -> str:
    """Check that media storage is usable (write, read back, delete a probe object); raise StorageError
    with an operator-readable message if not. Returns a one-line description of the storage."""
    if not is_object_storage():
        root = Path(settings.MEDIA_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise StorageError(f"MEDIA_ROOT {root} is not writable.")
        return f"local filesystem at {root}"
    bucket = str(settings.MEDIA_S3_BUCKET)
    endpoint = str(settings.MEDIA_S3_ENDPOINT_URL) or "AWS S3"
    where = f"bucket {bucket!r} at {endpoint}"
    if not bucket:
        raise StorageError("MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET (and MEDIA_S3_ENDPOINT_URL for a non-AWS store).")
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    storage: Any = default_storage
    probe = storage.key(f".workbench-check/{uuid.uuid4().hex}")
    try:
        client = storage.client
        client.head_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=probe, Body=b"ok")
        client.get_object(Bucket=bucket, Key=probe)["Body"].read()
        client.delete_object(Bucket=bucket, Key=probe)
    except NoCredentialsError as exc:
        raise StorageError(
            f"Media storage: no credentials for {where} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."
        ) from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "")) or str(
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AccessDenied"}:
            reason = f"the credentials were refused ({code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        elif code in {"404", "NoSuchBucket"}:
            reason = "the bucket does not exist; create it (private, no public access) or fix MEDIA_S3_BUCKET"
        else:
            reason = f"the store answered {code}"
        raise StorageError(f"Media storage: {where}: {reason}.") from exc
    except (BotoCoreError, ConnectionError, TimeoutError) as exc:
        raise StorageError(f"Media storage: cannot reach {where}: {exc}.") from exc
    return f"object store: {where}"
