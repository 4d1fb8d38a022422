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
    settings.WEBHOOK_RETRY_MAX_SECONDS = 14400.0
    [warning] = visibility_timeout_check()
    assert warning.id == "workbench.W001" and "WEBHOOK_RETRY_MAX_SECONDS" in warning.msg and "14400" in warning.hint
    settings.WEBHOOK_RETRY_MAX_SECONDS = 600.0
    [warning] = visibility_timeout_check()  # the infer queue's three-hour limit (INFER_TASK_TIME_LIMIT_S) is longest
    assert "time limit (10800 s)" in warning.msg, warning.msg
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 10801}
    assert visibility_timeout_check() == []


def _effective_worker(pool: str, queues: str, **env: str) -> dict[str, object]:
    """What a worker started with this environment would enforce: Celery's own WorkController (not started) and
    the task classes after the app applies its annotations, read in a fresh process so settings read ``env``."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json; from workbench.celery import app; app.loader.import_default_modules();"
        f"w = app.WorkController(pool_cls={pool!r}, queues={queues.split(',')!r}, concurrency=1);"
        "t = lambda n: [app.tasks[n].soft_time_limit, app.tasks[n].time_limit];"
        "print(json.dumps({'memory_kib': w.max_memory_per_child, 'tasks': w.max_tasks_per_child,"
        " 'process_video': t('moderation.media.tasks.process_video'),"
        " 'export_dataset': t('training.tasks.export_dataset'),"
        " 'rerun_decision': t('moderation.inference.tasks.rerun_decision'),"
        " 'run_evaluation': t('training.tasks.run_evaluation'),"
        " 'run_training_job': t('training.tasks.run_training_job')}))"
    )
    child_env = {**os.environ, "SECRET_KEY": "k" * 60, "DJANGO_SETTINGS_MODULE": "workbench.settings", **env}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_child_is_replaced_before_it_outgrows_its_container_and_media_tasks_have_time_limits():
    """No per-child memory or task limit was set: a leaking or huge task grew a prefork child until the container's
    cap killed the whole worker. Media tasks had no time limit, so a hung decode held a child for ever."""
    worker = _effective_worker("prefork", "media,default")
    assert worker["memory_kib"] == 3072 * 1024 and worker["tasks"] == 1000
    assert worker["process_video"] == [55 * 60, 60 * 60]
    assert worker["export_dataset"] == [None, None]  # the default queue: none unless set
    assert worker["rerun_decision"] == [INFER_ITEM_TIME_LIMIT_S - 60, INFER_ITEM_TIME_LIMIT_S]  # its own, kept
    assert worker["run_evaluation"] == [175 * 60, 180 * 60]  # the infer queue's (the solo worker enforces them)
    assert worker["run_training_job"] == [None, None]  # a training job may train for days unless set


def test_worker_limits_are_set_per_deployment_from_the_environment():
    worker = _effective_worker(
        "prefork",
        "media,default",
        WORKER_MAX_MEMORY_PER_CHILD_MB="512",
        WORKER_MAX_TASKS_PER_CHILD="0",
        MEDIA_TASK_SOFT_TIME_LIMIT_S="100",
        MEDIA_TASK_TIME_LIMIT_S="120",
        DEFAULT_TASK_TIME_LIMIT_S="900",
        INFER_TASK_SOFT_TIME_LIMIT_S="0",
        INFER_TASK_TIME_LIMIT_S="1800",
        TRAIN_TASK_SOFT_TIME_LIMIT_S="86000",
        TRAIN_TASK_TIME_LIMIT_S="86400",
    )
    assert worker["memory_kib"] == 512 * 1024 and worker["tasks"] is None
    assert worker["process_video"] == [100, 120]
    assert worker["export_dataset"] == [None, 900]
    assert worker["run_evaluation"] == [None, 1800]
    assert worker["rerun_decision"] == [INFER_ITEM_TIME_LIMIT_S - 60, INFER_ITEM_TIME_LIMIT_S]
    assert worker["run_training_job"] == [86000, 86400]
