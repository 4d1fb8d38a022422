from __future__ import annotations

from datetime import datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone


class ModerationError(Exception):
    """A domain error whose message can be shown to the user as it is."""


class SenderError(ModerationError):
    """A failure of the sent file itself (not a playable video, damaged, empty…), written for whoever sent it:
    no server detail in it, so a platform that submitted the video reads it as it is. Recorded with the
    failure (``Video.error_for_sender``); any other failure text is the workbench's own."""


class NotAVideoError(SenderError):
    """The sent file is not a video at all (empty, a text file or a still image renamed .mp4, a file ffprobe cannot
    read as a playable video): processing the same file again can never succeed. Recorded as
    ``Video.ErrorKind.NOT_VIDEO``, so the video's page offers Dismiss instead of Retry; anything else that fails
    (a timeout, storage, a bug) may pass on a retry."""


class DamagedVideoError(SenderError):
    """The sent file is a video whose pictures cannot be decoded (cut off during upload, corrupt data): ffmpeg
    fails on the same bytes every time, so processing it again cannot succeed either. Recorded as
    ``Video.ErrorKind.DAMAGED`` (Dismiss, not Retry). Raised only where the decoder itself rejected the bytes:
    a timeout or a killed decoder may pass on a retry and stays a plain ``SenderError``, and ffmpeg failing
    because our own write or read failed (a full disk) is a ``ServerStorageError``."""


class ServerStorageError(ModerationError):
    """Our own files failed us while processing a video: the disk is full (``ENOSPC``), read-only or failing, or
    another OS-level read or write of ours failed (``server_storage_error``). Nothing is wrong with the sent
    file, so it is never recorded as ``Video.ErrorKind.DAMAGED`` (which offers only Dismiss and tells the
    uploader to upload again): it stays a failure of ours (``Video.ErrorKind.OTHER``), offered Retry once
    storage is fixed, and a platform reads only that the workbench failed on its side."""


def server_storage_error(reason: str) -> ServerStorageError:
    """The one wording of a storage failure of ours; ``reason`` is the operating system's (e.g. "No space left on
    device"), never a path."""
    return ServerStorageError(
        f"The server had a storage problem while processing this video ({reason}); the file itself is not at "
        "fault. Retry it once the server's storage is fixed."
    )


class StaleEditError(ModerationError):
    """Refused because someone else changed the row since the editor's page was drawn: the screen shows
    the row as it is now (what was typed would write over their change), not what was typed."""


def error_text(exc: BaseException, *readable: type[BaseException]) -> str:
    """What a user reads of a failure: our own errors (a ModerationError, or one of the ``readable`` types
    of an app above, e.g. training's TrainingError) are written to be read as they are; anything else
    keeps its class name in front, since ``KeyError: 'label'`` says little without it."""
    if isinstance(exc, SoftTimeLimitExceeded):  # which limit stopped it, not a bare class name
        from workbench.worker_limits import soft_time_limit_text

        return soft_time_limit_text()
    detail = str(exc).strip()
    if isinstance(exc, (ModerationError, *readable)):
        return detail or type(exc).__name__
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def dismissed_already(*, video_id: int, by: Any, at: datetime) -> ModerationError:
    """The one wording of a second Dismiss of a video an operator dismissed already (a double click, another tab):
    who did it (``by``, None once that user was deleted) and when, so the second operator knows it was handled."""
    who = by.get_username() if by is not None else "a deleted user"
    return ModerationError(
        f"Video #{video_id} was dismissed already, by {who} at {timezone.localtime(at):%Y-%m-%d %H:%M}."
    )
