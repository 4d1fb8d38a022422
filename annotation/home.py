"""The annotation app's home-page panel (``workbench.home``): a labeler's correction and Tag2CoT backlog."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from workbench.home import HomePanel, home_panel_register
from workbench.roles import Perm


def _labeling(user: User) -> dict[str, Any]:
    from annotation.models import CotCorrection, Tag2CotTask
    from annotation.selectors import correction_candidates

    return {
        "uncorrected": correction_candidates(status="none").count(),
        "my_drafts": CotCorrection.objects.filter(author=user, status=CotCorrection.Status.DRAFT).count(),
        # A submitted correction waits for a second labeler (not its author).
        "to_review": CotCorrection.objects.filter(status=CotCorrection.Status.SUBMITTED).exclude(author=user).count(),
        "tag2cot_open": Tag2CotTask.objects.filter(status=Tag2CotTask.Status.OPEN).count(),
    }


def register() -> None:
    home_panel_register(
        HomePanel(key="labeling", perm=Perm.CORRECT_COT, template="home/_labeling.html", context=_labeling, order=20)
    )
