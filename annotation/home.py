"""The annotation app's home-page panel (``workbench.home``): a labeler's correction and Tag2CoT backlog."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from workbench.db import aggregate_row
from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _labeling_counts(user: User) -> dict[str, QuerySet[Any]]:
    from django.db.models import Count, Q

    from annotation.models import CotCorrection, Tag2CotTask
    from annotation.selectors import correction_candidates, tag2cot_tasks

    # Counted as the lists they link to count (``user``: a restricted review queue's content stays with its
    # groups), so the home page says nothing about videos hidden from the labeler. The four correction counts in
    # one row (one pass over the decisions, each correction joined once): one statement each before, the
    # uncorrected count already reading every decision.
    corrections = aggregate_row(
        correction_candidates(user=user),
        uncorrected=Count("pk", filter=Q(correction__isnull=True)),
        my_drafts=Count("pk", filter=Q(correction__status=CotCorrection.Status.DRAFT, correction__author=user)),
        # A submitted correction waits for a second labeler (not its author).
        to_review=Count(
            "pk", filter=Q(correction__status=CotCorrection.Status.SUBMITTED) & ~Q(correction__author=user)
        ),
        # The labeler's own, sent on and not yet accepted or rejected: the panel said only "Corrections waiting for a
        # second labeler: 0" right after they submitted one, as if it had gone nowhere.
        mine_waiting=Count("pk", filter=Q(correction__status=CotCorrection.Status.SUBMITTED, correction__author=user)),
        # The labeler's own that a second labeler rejected, to rework: nothing on the home page said so, and the
        # correction dropped out of every count there (walk hwalk22).
        mine_rejected=Count("pk", filter=Q(correction__status=CotCorrection.Status.REJECTED, correction__author=user)),
    )
    tag2cot = aggregate_row(tag2cot_tasks(status=Tag2CotTask.Status.OPEN, user=user), tag2cot_open=Count("pk"))
    return {"corrections": corrections, "tag2cot": tag2cot}


def _labeling(user: User, counted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**counted["corrections"], **counted["tag2cot"]}


def register() -> None:
    home_panel_register(
        HomePanel(
            key="labeling",
            perm=Perm.CORRECT_COT,
            template="home/_labeling.html",
            context=_labeling,
            counts=_labeling_counts,
            order=20,
        )
    )
