"""`evaluate_tags` opens --train, --test and --tags-file through the operator's opener
(``moderation.files.operator_file_open``, tests/moderation/test_operator_files.py): a FIFO was waited on for ever, a
folder given as --tags-file ended in "Cannot read …: [Errno 21] Is a directory" and a non-UTF-8 one in a
UnicodeDecodeError's words."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.moderation.test_operator_files import _unblocked_after


def test_evaluate_tags_says_what_a_path_that_is_no_file_is(vocabulary, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"title": "四川火锅", "tags": ["火锅"]}, ensure_ascii=False) + "\n", encoding="utf-8")
    fifo = tmp_path / "test.jsonl"
    os.mkfifo(fifo)
    quiet = {"stdout": StringIO(), "stderr": StringIO()}

    with _unblocked_after(fifo), pytest.raises(CommandError, match=r"test\.jsonl is not a regular file \(a FIFO"):
        call_command("evaluate_tags", "--train", str(train), "--test", str(fifo), **quiet)

    folder = tmp_path / "tags"
    folder.mkdir()
    with pytest.raises(CommandError, match=r"tags is a folder: give the JSONL file itself"):
        call_command("evaluate_tags", "--train", str(train), "--cv", "2", "--tags-file", str(folder), **quiet)

    latin1 = tmp_path / "tags.jsonl"
    latin1.write_bytes(b'{"pid": "1", "tags": ["caf\xe9"]}\n')
    with pytest.raises(CommandError, match=r"tags\.jsonl is not UTF-8 text \(byte 26\)"):
        call_command("evaluate_tags", "--train", str(train), "--cv", "2", "--tags-file", str(latin1), **quiet)
