"""Prometheus metrics, safe under several processes (gunicorn workers, Celery prefork children).

Two kinds of numbers:

- **Process metrics** (histograms and counters observed where the work happens: claim and submit
  latency, Celery task durations and failures). With ``PROMETHEUS_MULTIPROC_DIR`` set (``manage.py
  up`` sets it; in containers, a volume shared by web and workers) every process writes them to
  that folder and ``/metrics`` adds them up across processes; without it they are this process's.
- **Database numbers** computed at scrape time (queue depth and age, SLA breaches, model latency,
  escalation, webhook lag): the same from whichever process answers. Apps above the workbench
  register a collector for them with ``register_collector`` (the workbench never imports them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # must exist before the first metric is created
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

REVIEW_CLAIM_SECONDS = Histogram(
    "workbench_review_claim_seconds", "Time to claim the next review item", ["queue"], buckets=LATENCY_BUCKETS
)
REVIEW_SUBMIT_SECONDS = Histogram(
    "workbench_review_submit_seconds", "Time to record a review verdict", ["queue"], buckets=LATENCY_BUCKETS
)
CELERY_TASK_SECONDS = Histogram(
    "workbench_celery_task_seconds", "Celery task run time", ["task", "queue"], buckets=TASK_BUCKETS
)
CELERY_TASK_FAILURES = Counter("workbench_celery_task_failures", "Celery tasks that raised", ["task", "queue"])
# Wrong passwords ("wrong_password") and sign-ins refused while an account or address is paused ("paused"). The
# throttle stops one address; spraying from many addresses (each under every limit) shows as a rise of this rate,
# which is what an operator's alert watches.
SIGNIN_FAILURES = Counter("workbench_signin_failures", "Failed sign-ins on /login/ and /admin/login/", ["outcome"])

_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a scrape-time collector (a function yielding metric families); idempotent."""
    if collect not in _collectors:
        _collectors.append(collect)


class _Registered(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in list(_collectors):
            yield from collect()


def _broker_queue_lengths() -> Iterable[Metric]:
    from workbench.health import broker_queue_lengths

    family = GaugeMetricFamily("workbench_celery_queue_length", "Messages waiting in a Celery queue", labels=["queue"])
    try:
        lengths = broker_queue_lengths()
    except Exception:  # the broker is down: readyz says so; the scrape still answers
        lengths = {}
    for queue, length in lengths.items():
        family.add_metric([queue], length)
    yield family


register_collector(_broker_queue_lengths)


def metrics_text() -> tuple[bytes, str]:
    """The exposition body and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(_Registered())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward(Collector):
    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        return self.source.collect()


# --- Celery: task durations and failures per queue --------------------------------------------------


def connect_celery_signals() -> None:
    import time

    from celery import signals

    started: dict[str, float] = {}

    def _queue(task: Any) -> str:
        info = getattr(task.request, "delivery_info", None) or {}
        return str(info.get("routing_key") or getattr(task, "queue", None) or "default")

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id: str | None = None, **_: Any) -> None:
        if task_id:
            started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
        begin = started.pop(task_id or "", None)
        if begin is not None and task is not None:
            CELERY_TASK_SECONDS.labels(task.name, _queue(task)).observe(time.perf_counter() - begin)

    @signals.task_failure.connect(weak=False)
    def _failure(sender: Any = None, **_: Any) -> None:
        if sender is not None:
            CELERY_TASK_FAILURES.labels(sender.name, _queue(sender)).inc()
