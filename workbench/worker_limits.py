"""Time and memory limits on the solo-pool workers (the GPU workers: infer, train).

Celery enforces soft and hard time limits and ``worker_max_memory_per_child`` only in a prefork pool, where a parent
process watches a child. The GPU workers stay solo: a prefork child is daemonic (billiard), so a task there cannot
start processes of its own ("daemonic processes are not allowed to have children": vLLM's engine core process,
torch DataLoader workers), and a child killed at its hard limit would leave the processes it did start
(``accelerate launch`` ranks) running on the GPU with nobody to wait for them. So the one worker process enforces
the limits itself, for tasks it runs in its main thread (never a test's worker thread):

- the soft limit: SIGALRM raises ``SoftTimeLimitExceeded`` inside the task, as billiard's SIGUSR1 does in a prefork
  child; the task records the failure on its video or run (``time_limit_text`` says which limit stopped it). The
  worker then shuts down warm: an engine interrupted mid-call (vLLM's offline engine keeps the requests it was
  given) must not answer the next task from a half-finished state, so the next task gets a fresh process.
- the hard limit (the task did not return, e.g. stuck in native code): a watchdog thread records the failure with
  the recorder the task's app registered (``records_hard_time_limit``: an evaluation or a training job leaves
  "running" with the reason, the state beat's reapers give a run whose worker was killed, with a clearer message),
  stops the processes the task started, and ends the worker (``os._exit``): the container's restart policy starts a
  fresh one (its model loads again). The unacknowledged message comes back after CELERY_VISIBILITY_TIMEOUT and finds
  the run finished.
- the prefork workers (media, default) have Celery's own limits: at the hard one the parent kills the child and sends
  ``task_failure`` with ``TimeLimitExceeded``; the same recorder is called there (``_record_prefork_hard_limit``), so
  a media task's run is recorded at its limit too, not only by a sweep well after it.
- memory: after a task that left the process above ``SOLO_WORKER_MAX_MEMORY_MB``, a warm shutdown (the task is
  done); the restart policy starts a fresh process, as Celery replaces a prefork child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from celery import signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

logger = logging.getLogger(__name__)

# A worker ended at a task's hard time limit exits with this status (EX_SOFTWARE), so its logs and `docker ps` say
# it did not just crash.
HARD_LIMIT_EXIT_STATUS = 70
# How long the watchdog waits for a recorder (a locked row, a database away) before it ends the worker anyway; the
# reapers record the run then.
RECORD_TIMEOUT_S = 30.0

# (task args, task kwargs, message) -> None: marks the task's run failed with ``message``.
Recorder = Callable[[tuple[Any, ...], dict[str, Any], str], None]
_RECORDERS: dict[str, Recorder] = {}

_solo_worker = False
_watchdog: threading.Timer | None = None
_soft_limit_fired = False


def records_hard_time_limit(task_name: str) -> Callable[[Recorder], Recorder]:
    """Register what records ``task_name``'s run failed when a solo worker is ended at the task's hard limit."""

    def register(recorder: Recorder) -> Recorder:
        _RECORDERS[task_name] = recorder
        return recorder

    return register


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    hours = seconds / 3600
    return f"{hours:.0f} hours" if hours == int(hours) else f"{hours:.1f} hours"


def time_limit_text(*, task_name: str, seconds: float, soft: bool) -> str:
    """What a user reads on a run or video a time limit stopped: after how long, which limit, and what to do."""
    from django.conf import settings

    from workbench.queues import TASK_ROUTES

    queue = TASK_ROUTES.get(task_name)
    which = "soft " if soft else ""
    if queue is None:
        limit = f"the worker's {which}time limit"
    else:
        configured = settings.TASK_TIME_LIMITS_S.get(queue.value, (0, 0))[0 if soft else 1]
        setting = f"{queue.value.upper()}_TASK_{'SOFT_' if soft else ''}TIME_LIMIT_S"
        limit = (
            f"the {queue.value} workers' {which}time limit ({setting})"
            if configured and float(configured) == float(seconds)
            else f"this task's own {which}time limit"
        )
    ended = "" if soft else " The worker was restarted."
    return f"Stopped after {_duration(seconds)}, {limit}.{ended} Run it again once the limit allows work this long."


def soft_time_limit_text(task: Any = None, default: str = "Stopped at the worker's soft time limit.") -> str:
    """``time_limit_text`` for ``task`` (default: the task running now), inside its handler of
    ``SoftTimeLimitExceeded``."""
    from celery import current_task

    task = task if task is not None else current_task
    seconds = None
    if task is not None and getattr(task, "request", None) is not None:
        seconds = (task.request.timelimit or (None, None))[1] or task.soft_time_limit
    if task is None or not seconds:
        return default
    return time_limit_text(task_name=task.name, seconds=float(seconds), soft=True)


def _limits(task: Any) -> tuple[float | None, float | None]:
    """(soft, hard) seconds for this run of ``task``: the message's own (``apply_async(time_limit=…)``), else the
    task's (its options or the queue's annotation)."""
    hard, soft = task.request.timelimit or (None, None)
    return (soft or task.soft_time_limit or None), (hard or task.time_limit or None)


def _on_soft_limit(signum: int, frame: Any) -> None:
    global _soft_limit_fired
    _soft_limit_fired = True
    raise SoftTimeLimitExceeded()


def _end_worker(task_name: str, args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float) -> None:
    """The watchdog, at the hard limit: record the run failed, stop what the task started, end the process."""
    message = time_limit_text(task_name=task_name, seconds=seconds, soft=False)
    logger.error("hard time limit (%.0f s) exceeded for %s: ending this solo worker", seconds, task_name)
    recorder = _RECORDERS.get(task_name)
    if recorder is not None:

        def record() -> None:
            from django.db import connection

            try:
                recorder(args, kwargs, message)
            except Exception:
                logger.exception("could not record %s's hard time limit; beat's reaper will", task_name)
            finally:
                connection.close()

        recording = threading.Thread(target=record, name="time-limit-record", daemon=True)
        recording.start()
        recording.join(RECORD_TIMEOUT_S)
    _stop_children()
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(HARD_LIMIT_EXIT_STATUS)


def _stop_children() -> None:
    """SIGKILL every process this one started (``accelerate launch`` and its ranks, a vLLM engine core): they
    would hold the GPU for the next worker. In a container they end with its first process anyway."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the requirements
        return
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


def _resident_mb() -> float:
    """This process's resident size now (MB), from /proc; its peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _note_the_pool(sender: Any = None, **_: Any) -> None:
    global _solo_worker
    from celery.concurrency import get_implementation
    from celery.concurrency.solo import TaskPool

    pool = getattr(sender, "pool_cls", None)
    try:
        _solo_worker = pool is not None and issubclass(get_implementation(pool), TaskPool)
    except (TypeError, KeyError, ValueError):
        _solo_worker = False


def _guarding() -> bool:
    return _solo_worker and threading.current_thread() is threading.main_thread()


def _arm(sender: Any = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    global _watchdog
    if not _guarding() or task is None or task.request.is_eager:
        return
    soft, hard = _limits(task)
    if soft:
        signal.signal(signal.SIGALRM, _on_soft_limit)
        signal.setitimer(signal.ITIMER_REAL, float(soft))
    if hard:
        _watchdog = threading.Timer(
            float(hard), _end_worker, args=(task.name, tuple(args or ()), dict(kwargs or {}), float(hard))
        )
        _watchdog.name, _watchdog.daemon = "time-limit-watchdog", True
        _watchdog.start()


def _disarm(sender: Any = None, task: Any = None, **_: Any) -> None:
    global _watchdog, _soft_limit_fired
    if not _guarding():
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    if _watchdog is not None:
        _watchdog.cancel()
        _watchdog = None
    from django.conf import settings

    limit = settings.SOLO_WORKER_MAX_MEMORY_MB
    if _soft_limit_fired:
        _soft_limit_fired = False
        logger.warning(
            "%s was stopped at its soft time limit: shutting down for a fresh process", getattr(task, "name", "a task")
        )
        os.kill(os.getpid(), signal.SIGTERM)
    elif limit and (resident := _resident_mb()) > limit:
        logger.warning(
            "this solo worker holds %.0f MB after %s, above SOLO_WORKER_MAX_MEMORY_MB (%s): shutting down for a "
            "fresh process",
            resident,
            getattr(task, "name", "a task"),
            limit,
        )
        os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown: the next task waits for the fresh process


def _record_prefork_hard_limit(
    sender: Any = None, exception: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    """A prefork worker's parent killed a child at the task's hard limit (Celery sends ``task_failure`` with
    ``TimeLimitExceeded`` from the parent, Celery 5.3+): record the run with the task's recorder, as the solo
    watchdog does. A solo worker never sees this exception (its watchdog ends the process first)."""
    if not isinstance(exception, TimeLimitExceeded) or sender is None:
        return
    recorder = _RECORDERS.get(getattr(sender, "name", ""))
    if recorder is None:
        return
    from django.db import connection

    seconds = float(exception.args[0]) if exception.args else float(getattr(sender, "time_limit", 0) or 0)
    try:
        recorder(
            tuple(args or ()), dict(kwargs or {}), time_limit_text(task_name=sender.name, seconds=seconds, soft=False)
        )
    except Exception:
        logger.exception("could not record %s's hard time limit; its sweep will", sender.name)
    finally:
        connection.close()  # the parent's event loop: no connection kept between these rare calls


def connect_solo_worker_limits() -> None:
    """Enforce the limits in a solo worker (workbench/celery.py calls it once; a prefork worker leaves them to
    Celery, and records a run Celery's hard limit ended)."""
    signals.worker_init.connect(_note_the_pool, weak=False)
    signals.task_prerun.connect(_arm, weak=False)
    signals.task_postrun.connect(_disarm, weak=False)
    signals.task_failure.connect(_record_prefork_hard_limit, weak=False)
