"""Opening a data file an operator names on the command line (``manage.py import_kuaimod FILE``, ``evaluate --train
FILE``, ``evaluate_tags --train FILE``).

Not the import folders' opener (``moderation.media.ingest.import_file_open``): that one confines a path a web user or
a platform gave to MEDIA_IMPORT_ROOTS and follows no symlink, since its folders may be written by a platform racing
the check. A command runs with the operator's own rights on files the operator chose, datasets kept anywhere (often
a symlink into a data disk), so a symlink to a file is followed, as ``cat`` would. What it shares with that opener is
what a command must never do: wait for ever on a FIFO, end in a traceback on a folder, a dangling symlink, a loop of
symlinks or a file it may not read, or read into memory a file far larger than any data set.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

from moderation.errors import ModerationError

# The largest file these commands read: each holds all its records in memory, and a data set of short-video
# records (title, OCR, ASR text per line) is megabytes, not gigabytes.
OPERATOR_FILE_MAX_BYTES = 2 * 2**30


def _size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def operator_file_open(path: Path | str, *, max_bytes: int = OPERATOR_FILE_MAX_BYTES) -> BinaryIO:
    """``path`` open for reading in binary (the caller closes it), or a ``ModerationError`` saying why not.

    Opened non-blocking, then checked on the opened file itself (``fstat``), so a FIFO, socket or device (a FIFO
    opened for reading waits for a writer: the command hung with no word) is refused without waiting, and what is
    checked is what is read."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            dangling = path.is_symlink()
            raise ModerationError(
                f"{path} is a symlink to a file that does not exist." if dangling else f"No such file: {path}"
            ) from exc
        if exc.errno == errno.ELOOP:
            raise ModerationError(f"{path} is a loop of symlinks, not a file.") from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ModerationError(f"Not allowed to read {path} (its permissions).") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise ModerationError(f"This path is too long for the file system: {str(path)[:200]}…") from exc
        raise ModerationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ModerationError(f"{path} is a folder: give the JSONL file itself (one record per line).")
        if not stat.S_ISREG(st.st_mode):
            raise ModerationError(
                f"{path} is not a regular file (a FIFO, socket or device): give a JSONL file on disk; a pipe would "
                "be waited on for ever."
            )
        if st.st_size > max_bytes:
            raise ModerationError(
                f"{path} is {_size_text(st.st_size)}: this command reads at most {_size_text(max_bytes)} (it holds "
                "every record in memory). Is it the right file? Split it, or give a sample of it."
            )
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
