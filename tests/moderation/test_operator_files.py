"""The data files an operator names on the command line (`import_kuaimod FILE`, `evaluate --train/--test FILE`,
`evaluate_tags --train/--test/--tags-file FILE`) are opened through ``moderation.files.operator_file_open``.

Opened by path, a FIFO was waited on for ever (the command hung, saying nothing) and a folder, a loop of symlinks or
a file of gigabytes ended in a traceback (IsADirectoryError, or every record read into memory). Each is now a
CommandError saying what the path is; a symlink to a file is followed, as the operator meant."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from moderation.files import OPERATOR_FILE_MAX_BYTES, operator_file_open
from moderation.media.models import Video
from tests.moderation.inference.kuaimod_samples import kuaimod_line

BAD_FILES = {
    "folder": r"records\.jsonl is a folder: give the JSONL file itself",
    "fifo": r"records\.jsonl is not a regular file \(a FIFO, socket or device\)",
    "dangling symlink": r"records\.jsonl is a symlink to a file that does not exist",
    "symlink loop": r"records\.jsonl is a loop of symlinks, not a file",
    "missing": r"No such file: .*records\.jsonl",
    "too large": r"records\.jsonl is 2\.0 GB: this command reads at most 2\.0 GB",
}


def _bad_file(kind: str, folder: Path) -> Path:
    path = folder / "records.jsonl"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling symlink":
        path.symlink_to(folder / "gone.jsonl")
    elif kind == "symlink loop":
        path.symlink_to(path)
    elif kind == "too large":
        with path.open("wb") as fh:  # sparse: no disk space taken
            fh.truncate(OPERATOR_FILE_MAX_BYTES + 1)
    return path


@contextlib.contextmanager
def _unblocked_after(path: Path, seconds: float = 10.0) -> Iterator[None]:
    """Opens a FIFO at ``path`` for writing (and closes it) after ``seconds``: a reader that waited on it then reads
    an empty file, so a command that opens the FIFO fails its test instead of hanging the suite."""

    def write_end() -> None:
        with contextlib.suppress(OSError):  # ENXIO: nobody reading (refused, as it should be)
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    timer = threading.Timer(seconds, write_end)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.mark.parametrize("kind", BAD_FILES)
def test_the_opener_refuses_what_is_not_a_readable_file_in_words(kind: str, tmp_path: Path) -> None:
    path = _bad_file(kind, tmp_path)
    from moderation.errors import ModerationError

    with _unblocked_after(path), pytest.raises(ModerationError, match=BAD_FILES[kind]):
        operator_file_open(path).close()


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize(
    "command",
    [
        ["import_kuaimod", "{}"],
        ["evaluate", "--train", "{}", "--cv", "2"],
        ["evaluate", "--train", "{good}", "--test", "{}"],
    ],
    ids=["import_kuaimod", "evaluate --train", "evaluate --test"],
)
def test_the_kuaimod_commands_say_what_the_path_is(db, kind: str, command: list[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _bad_file(kind, tmp_path)
    good = tmp_path / "train.jsonl"
    lines = [kuaimod_line(f"{n:03}", "正向" if n % 2 else "引导私下交易", f"title {n}") for n in range(8)]
    good.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [a.format(path, good=good) for a in command]
    with _unblocked_after(path), pytest.raises(CommandError, match=BAD_FILES[kind]):
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert not Video.objects.exists()


def test_import_kuaimod_follows_a_symlink_to_a_file(db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data-disk" / "kuaimod.jsonl"
    data.parent.mkdir()
    data.write_text(kuaimod_line("007", "正向", "null", ocr="红烧肉做法") + "\n", encoding="utf-8")
    (tmp_path / "kuaimod.jsonl").symlink_to(data)
    out = StringIO()

    call_command("import_kuaimod", str(tmp_path / "kuaimod.jsonl"), stdout=out, stderr=StringIO())

    assert "imported 1 records: 1 created" in out.getvalue()
    assert Video.objects.filter(external_id="kuaimod:007").exists()
