"""The training app's home-page panel (``workbench.home``): jobs and the models they produced."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _training(user: User) -> dict[str, Any]:
    from training.models import TrainingJob

    jobs = TrainingJob.objects.order_by("-created_at")
    return {
        "jobs": list(jobs[:5]),
        "running": jobs.filter(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING]).count(),
        "failed": jobs.filter(status=TrainingJob.Status.FAILED).count(),
    }


def register() -> None:
    home_panel_register(
        HomePanel(
            key="training", perm=Perm.MANAGE_TRAINING, template="home/_training.html", context=_training, order=41
        )
    )
