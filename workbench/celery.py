import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings")

app = Celery("workbench")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from workbench.queues import configure_routing  # noqa: E402

configure_routing(app)

from workbench.health import connect_worker_heartbeat  # noqa: E402
from workbench.metrics import connect_celery_signals  # noqa: E402

connect_celery_signals()
connect_worker_heartbeat()
