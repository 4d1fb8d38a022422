"""A KuaiMod file written again after its evaluation was queued: a second start made a second run (the stat differed
from the queued run's), yet the queued run reads the file only when its worker opens it, so both measured the new
bytes: the GPU measured the same file twice. And a run started over (its worker died after hashing the file) hashed
the file again and measured whatever it held by then, under a key that changed mid-run.

What a user expects: a start measures the file as it is when the run reads it, once. A run not reading it yet is
joined whatever the file's stat (it will read the file as it is then); a run that has read it measures those bytes
or nothing: started over after the file changed, it fails saying so, and a new start measures the file as it is."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from moderation.inference.services import model_version_serving
from training.evaluation import _items, evaluation_execute, evaluation_start
from training.models import EvaluationRun

pytestmark = pytest.mark.django_db

ROWS = [
    {"pid": "1", "tag": "正向", "title": "cooking noodles at home", "OCR": "null", "ASR": "null", "images": []},
    {"pid": "2", "tag": "引导私下交易", "title": "加我微信 私下交易", "OCR": "加微信", "ASR": "私聊", "images": []},
    {"pid": "3", "tag": "正向", "title": "a walk in the park", "OCR": "null", "ASR": "null", "images": []},
]


@pytest.fixture
def eval_file(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    path = tmp_path / "held-out.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS[:2]), encoding="utf-8")
    return path


def _start(path) -> EvaluationRun:  # type: ignore[no-untyped-def]
    return evaluation_start(
        model_version=model_version_serving(), created_by=None, eval_set="kuaimod_file", file_path=str(path)
    )


def _rewrite(path, rows) -> None:  # type: ignore[no-untyped-def]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")


def test_a_file_rewritten_while_its_run_is_queued_is_measured_once(policy_version, eval_file) -> None:  # type: ignore[no-untyped-def]
    first = _start(eval_file)
    _rewrite(eval_file, ROWS)  # a line added before the worker took the run

    again = _start(eval_file)

    assert again.pk == first.pk and EvaluationRun.objects.count() == 1
    done = evaluation_execute(run_id=first.pk)
    assert done is not None and done.status == "succeeded" and done.n_items == 3, done and done.error
    assert hashlib.sha256(eval_file.read_bytes()).hexdigest()[:16] in done.eval_set_key
    # Read, it pins the file it measured: a start of the file written again after that is a run of its own.
    _rewrite(eval_file, ROWS[:1])
    assert _start(eval_file).pk != first.pk


def _first_attempt_died_after_hashing(run: EvaluationRun) -> EvaluationRun:
    """What a worker killed mid-run leaves: the run running, its file hashed into its key, its heartbeat stale."""
    EvaluationRun.objects.filter(pk=run.pk).update(status="running")
    run.refresh_from_db()
    _items(run)  # the worker's hash and parse, before the model runs
    stale = timezone.now() - timedelta(hours=1)
    EvaluationRun.objects.filter(pk=run.pk).update(heartbeat_at=stale, started_at=stale)
    run.refresh_from_db()
    return run


def test_a_run_started_over_after_its_file_changed_fails_saying_so(policy_version, eval_file) -> None:  # type: ignore[no-untyped-def]
    run = _first_attempt_died_after_hashing(_start(eval_file))
    hashed_key = run.eval_set_key
    first_digest = hashlib.sha256(eval_file.read_bytes()).hexdigest()
    _rewrite(eval_file, ROWS)

    done = evaluation_execute(run_id=run.pk)  # the task redelivered: the run is started over

    assert done is not None and done.status == "failed"
    assert "changed since this evaluation first read it" in done.error, done.error
    assert f"sha256 {first_digest[:8]}… then" in done.error and "Start a new evaluation" in done.error
    assert done.eval_set_key == hashed_key and not done.predictions  # nothing measured under the first file's key
    # A new start measures the file as it is now.
    fresh = _start(eval_file)
    assert fresh.pk != run.pk
    measured = evaluation_execute(run_id=fresh.pk)
    assert measured is not None and measured.status == "succeeded" and measured.n_items == 3


def test_a_run_started_over_with_its_file_unchanged_measures_it(policy_version, eval_file) -> None:  # type: ignore[no-untyped-def]
    run = _first_attempt_died_after_hashing(_start(eval_file))
    hashed_key = run.eval_set_key

    done = evaluation_execute(run_id=run.pk)

    assert done is not None and done.status == "succeeded" and done.n_items == 2, done and done.error
    assert done.eval_set_key == hashed_key
