"""The training app's home-page panel (``workbench.home``): jobs and the models they produced."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from workbench.db import aggregate_row
from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _training_counts(user: User) -> dict[str, QuerySet[Any]]:
    from django.db.models import Count, Q

    from training.models import TrainingJob

    jobs = aggregate_row(
        TrainingJob.objects.all(),
        running=Count("pk", filter=Q(status__in=[TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING])),
        failed=Count("pk", filter=Q(status=TrainingJob.Status.FAILED)),
    )
    return {"jobs": jobs}


def _training(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from training.models import TrainingJob

    # The panel names the latest jobs, never their loss history or log (thousands of steps for a long run).
    latest = list(TrainingJob.objects.order_by("-created_at").defer("history", "log_tail")[:5])
    return {"jobs": latest, **counted["jobs"]}


def register() -> None:
    home_panel_register(
        HomePanel(
            key="training",
            perm=Perm.MANAGE_TRAINING,
            template="home/_training.html",
            context=_training,
            counts=_training_counts,
            order=41,
        )
    )
