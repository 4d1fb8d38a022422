"""Celery settings a deployment relies on: late acknowledgement of long work, one message prefetched, and a Redis
visibility timeout above the longest a task may run or wait (a deploy check says so when it is not)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from workbench.celery import app
from workbench.checks import visibility_timeout_check
from workbench.queues import INFER_ITEM_TIME_LIMIT_S, TASK_ROUTES, TaskQueue

ROOT = Path(__file__).resolve().parent.parent.parent


def _tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name in TASK_ROUTES}


def test_work_that_takes_long_is_acknowledged_when_done_and_given_back_if_its_worker_dies():
    tasks = _tasks()
    assert set(tasks) == set(TASK_ROUTES)
    long_queues = {TaskQueue.MEDIA, TaskQueue.INFER, TaskQueue.TRAIN}
    loose = sorted(
        name
        for name, task in tasks.items()
        if TASK_ROUTES[name] in long_queues
        and not (getattr(task, "acks_late", False) and getattr(task, "reject_on_worker_lost", False))
    )
    assert not loose, f"lost if their worker dies mid-task: {loose}"
    assert app.conf.worker_prefetch_multiplier == 1  # a worker holds no second message while it works


def test_gpu_workers_take_one_message_at_a_time_in_one_process():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name in ("worker-infer", "worker-train"):
        args = shlex.split(compose["services"][name]["command"])
        assert args[args.index("--pool") + 1] == "solo", name
        assert args[args.index("--concurrency") + 1] == "1", name
        assert args[args.index("--prefetch-multiplier") + 1] == "1", name


def test_the_visibility_timeout_is_above_the_longest_task_and_retry_wait(settings):
    """Below it, Redis hands a task still running (or a retry still waiting for its countdown) to a second worker."""
    assert visibility_timeout_check() == []  # the defaults
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1200}
    [warning] = visibility_timeout_check()
    assert warning.id == "workbench.W001" and "WEBHOOK_RETRY_MAX_SECONDS" in warning.msg and "3600" in warning.hint
    settings.WEBHOOK_RETRY_MAX_SECONDS = 600.0
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 800}
    [warning] = visibility_timeout_check()  # the infer item's 15-minute limit is the longest now
    assert f"time limit ({INFER_ITEM_TIME_LIMIT_S} s)" in warning.msg, warning.msg
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": INFER_ITEM_TIME_LIMIT_S + 1}
    assert visibility_timeout_check() == []
