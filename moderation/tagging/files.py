"""Reading vocabulary files line by line: a line that is not UTF-8 is a per-line error, not a crash."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from moderation.errors import ModerationError

MAX_FILE_BYTES = 50 * 1024 * 1024


def read_lines(path: Path, errors: list[str]) -> Iterator[str]:
    """The file's lines as text; undecodable lines become "" (reported as blank would be wrong:
    they are reported here and replaced by a NUL so the importer skips them with its own message)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModerationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if size > MAX_FILE_BYTES:
        raise ModerationError(f"{path} is {size:,} bytes; a vocabulary file has at most {MAX_FILE_BYTES:,}.")
    try:
        fh = path.open("rb")
    except OSError as exc:  # a folder, a file the command may not read: said, not a traceback
        raise ModerationError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    with fh:
        yield from decode_lines(fh, errors)


def decode_lines(raw_lines: Iterable[bytes], errors: list[str]) -> Iterator[str]:
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"line {number}: not UTF-8 text")
            yield "\x00"
