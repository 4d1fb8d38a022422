"""The training app's home-page panel (``workbench.home``): jobs and the models they produced."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _training(user: User) -> dict[str, Any]:
    from django.db.models import Count, Q

    from training.models import TrainingJob

    jobs = TrainingJob.objects.order_by("-created_at")
    # The panel names the latest jobs, never their loss history or log (thousands of steps for a long run).
    latest = list(jobs.defer("history", "log_tail")[:5])
    counts = TrainingJob.objects.aggregate(
        running=Count("pk", filter=Q(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING])),
        failed=Count("pk", filter=Q(status=TrainingJob.Status.FAILED)),
    )
    return {"jobs": latest, **counts}


def register() -> None:
    home_panel_register(
        HomePanel(
            key="training", perm=Perm.MANAGE_TRAINING, template="home/_training.html", context=_training, order=41
        )
    )
