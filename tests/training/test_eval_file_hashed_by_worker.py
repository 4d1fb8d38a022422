"""An evaluation's KuaiMod file is hashed by the evaluation's worker, not in the web request that starts it (a
multi-GB file took seconds of the request's CPU). The start stats the file: a second start of the same file joins
the open run, queued or running; a file written again in place is another run. The worker's sha256 is the
comparison key, of the bytes it evaluated. Real database; the request's file reads watched with Python's audit hook
(``open`` events), not by replacing any of our code."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from moderation.inference.services import model_version_serving
from training.evaluation import evaluation_execute, evaluation_start
from training.models import EvaluationRun

pytestmark = pytest.mark.django_db

_opened: list[str] = []
_watched: set[str] = set()
# Called once at the next opening of one of its paths, before the opening itself: a file swapped meanwhile.
_on_open: dict[str, Callable[[], None]] = {}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _watched and str(args[0]) in _watched:
        _opened.append(str(args[0]))
    if event == "open" and _on_open and str(args[0]) in _on_open:
        swap = _on_open[str(args[0])]
        _on_open.clear()
        swap()


sys.addaudithook(_audit)  # for the process (hooks cannot be removed): it records only while a path is watched


@pytest.fixture
def eval_file(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    path = tmp_path / "held-out.jsonl"
    rows = [
        {"pid": "1", "tag": "正向", "title": "cooking noodles at home", "OCR": "null", "ASR": "null", "images": []},
        {"pid": "2", "tag": "引导私下交易", "title": "加我微信 私下交易", "OCR": "加微信", "ASR": "私聊", "images": []},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def _start(client, path: Path):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("training:evaluation_start"),
        {"model_version": model_version_serving().pk, "eval_set": "kuaimod_file", "file_path": str(path)},
    )


def test_the_start_does_not_read_the_file_and_the_worker_keys_the_run_by_its_content(
    policy_version, client_as, eval_file
):
    admin = client_as("admin")
    _watched.add(str(eval_file))
    try:
        started = _start(admin, eval_file)
        read_in_request = list(_opened)
    finally:
        _watched.clear()
        _opened.clear()
    run = EvaluationRun.objects.get()
    assert started.status_code == 302 and read_in_request == []  # stat only: nothing opened in the request
    assert run.file_stat and run.eval_set_key == f"kuaimod_file:held-out.jsonl::policy_version={policy_version.pk}"
    page = admin.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()
    assert "KuaiMod file held-out.jsonl (hashed when it runs)" in page

    _watched.update({str(eval_file), eval_file.name})  # the worker opens the name in its folder (``openat``)
    try:
        done = evaluation_execute(run_id=run.pk)
        read_by_worker = list(_opened)
    finally:
        _watched.clear()
        _opened.clear()
    assert done is not None and done.status == "succeeded", done and done.error
    assert read_by_worker  # the hook sees the reads it is watching for: the worker's hash and parse
    digest = hashlib.sha256(eval_file.read_bytes()).hexdigest()[:16]
    assert done.eval_set_key == f"kuaimod_file:held-out.jsonl:{digest}:policy_version={policy_version.pk}"
    assert f"(sha256 {digest[:8]}…)" in admin.get(reverse("training:evaluation_detail", args=[run.pk])).content.decode()


def test_a_second_start_joins_the_open_run_queued_or_running_and_a_rewritten_file_is_another_run(
    policy_version, eval_file
):
    model = model_version_serving()

    def start() -> EvaluationRun:
        return evaluation_start(model_version=model, created_by=None, eval_set="kuaimod_file", file_path=str(eval_file))

    first = start()
    assert start().pk == first.pk  # queued: joined
    EvaluationRun.objects.filter(pk=first.pk).update(status="running", eval_set_key="kuaimod_file:x:abc:p=1")
    assert start().pk == first.pk  # running, its key hashed by its worker already: joined all the same

    eval_file.write_text(eval_file.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # written again in place
    second = start()
    assert second.pk != first.pk and second.file_stat != first.file_stat
    assert EvaluationRun.objects.count() == 2


def test_a_file_changed_after_the_start_is_measured_and_keyed_as_it_is_when_the_worker_reads_it(
    policy_version, eval_file
):
    """The key was the request's hash while the worker read the file later: changed meanwhile, the run's key named
    bytes it never evaluated, and the release gate compared it with runs of the old file."""
    run = evaluation_start(
        model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(eval_file)
    )
    lines = eval_file.read_text(encoding="utf-8").splitlines()
    eval_file.write_text(lines[0], encoding="utf-8")  # one item left
    done = evaluation_execute(run_id=run.pk)
    assert done is not None and done.status == "succeeded" and done.n_items == 1
    assert hashlib.sha256(eval_file.read_bytes()).hexdigest()[:16] in done.eval_set_key


def test_a_symlink_swapped_in_after_the_worker_checked_the_path_is_refused_not_followed(
    policy_version, eval_file, tmp_path
):
    """The worker confined the path again, then opened it by path twice (the hash, then the parse), following
    symlinks: a file in a platform's import folder swapped for a symlink after that check led the read to any file
    the worker could read (its sha256 went into the run's key). It is opened once now, through the import folders'
    opener (``import_file_open``: no symlink followed on the way): the swap, made here the moment the worker starts
    opening the file (Python's audit hook), fails the run saying why, and the other file is neither hashed nor read."""
    secret = tmp_path.parent / f"{tmp_path.name}-secret.jsonl"  # outside the import root
    secret.write_text(json.dumps({"pid": "9", "tag": "正向", "title": "someone else's"}), encoding="utf-8")
    run = evaluation_start(
        model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(eval_file)
    )

    def swap() -> None:
        eval_file.unlink()
        eval_file.symlink_to(secret)

    # The first opening after the check: the opener's walk starts at "/" (before: the path itself).
    _on_open.update({"/": swap, str(eval_file): swap})
    try:
        done = evaluation_execute(run_id=run.pk)
    finally:
        _on_open.clear()
    assert eval_file.is_symlink()  # swapped, after the check
    assert done is not None and done.status == "failed"
    assert "changed while it was being imported (a folder or the file on its way is now a symlink" in done.error
    assert hashlib.sha256(secret.read_bytes()).hexdigest()[:16] not in done.eval_set_key
    assert done.n_items in (0, None) and not done.predictions
