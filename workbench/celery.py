import logging.config
import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from workbench.queues import configure_routing  # noqa: E402

configure_routing(app)

from workbench.health import connect_worker_heartbeat  # noqa: E402
from workbench.metrics import connect_celery_signals  # noqa: E402
from workbench.worker_limits import connect_solo_worker_limits  # noqa: E402

connect_celery_signals()
connect_worker_heartbeat()
connect_solo_worker_limits()


@signals.worker_init.connect(weak=False)
@signals.beat_init.connect(weak=False)
def _refuse_the_development_key(**_: Any) -> None:
    """A worker or beat with no SECRET_KEY stops before it takes a task (web refuses it too, workbench/wsgi.py).
    SystemExit, since Celery logs and swallows a receiver's ordinary exception."""
    from workbench.checks import secret_key_refusal

    if refusal := secret_key_refusal():
        raise SystemExit(refusal)


@signals.worker_init.connect(weak=False)
def _refuse_invalid_settings(sender: Any = None, **_: Any) -> None:
    """A worker whose settings name a value the code does not know (``workbench.checks.SETTING_CHOICES``), or whose
    `-Q` names a queue that is not one of ours, stops before it takes a task, saying which and what is allowed:
    Celery runs no system checks, so a typo showed only when a task read the setting, and a mistyped queue was made
    and waited on for good. SystemExit, as above."""
    from workbench.checks import settings_refusal
    from workbench.queues import unknown_queues_refusal

    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    consumed = (getattr(queues, "consume_from", None) or {}).keys()
    if refusal := "\n".join(r for r in (settings_refusal(), unknown_queues_refusal(consumed)) if r):
        raise SystemExit(f"The settings have errors:\n{refusal}")


@signals.setup_logging.connect(weak=False)
def _use_django_logging(**_: Any) -> None:
    """Workers and beat log like the web process (settings.LOGGING: LOG_FORMAT, LOG_LEVEL, stdout, the task's id
    as the request id). Without a receiver Celery replaced the root handlers with its own text format, so
    LOG_FORMAT=json never reached a worker's lines."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
