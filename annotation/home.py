"""The annotation app's home-page panel (``workbench.home``): a labeler's correction and Tag2CoT backlog."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _labeling(user: User) -> dict[str, Any]:
    from django.db.models import Count, Q

    from annotation.models import CotCorrection, Tag2CotTask
    from annotation.selectors import correction_candidates, tag2cot_tasks

    # Counted as the lists they link to count (``user``: a restricted review queue's content stays with its
    # groups), so the home page says nothing about videos hidden from the labeler. The four correction counts in
    # one statement (one pass over the decisions, each correction joined once): one statement each before, the
    # uncorrected count already reading every decision.
    counts = correction_candidates(user=user).aggregate(
        uncorrected=Count("pk", filter=Q(correction__isnull=True)),
        my_drafts=Count("pk", filter=Q(correction__status=CotCorrection.Status.DRAFT, correction__author=user)),
        # A submitted correction waits for a second labeler (not its author).
        to_review=Count(
            "pk", filter=Q(correction__status=CotCorrection.Status.SUBMITTED) & ~Q(correction__author=user)
        ),
        # The labeler's own, sent on and not yet accepted or rejected: the panel said only "Corrections waiting for a
        # second labeler: 0" right after they submitted one, as if it had gone nowhere.
        mine_waiting=Count("pk", filter=Q(correction__status=CotCorrection.Status.SUBMITTED, correction__author=user)),
    )
    return {**counts, "tag2cot_open": tag2cot_tasks(status=Tag2CotTask.Status.OPEN, user=user).count()}


def register() -> None:
    home_panel_register(
        HomePanel(key="labeling", perm=Perm.CORRECT_COT, template="home/_labeling.html", context=_labeling, order=20)
    )
