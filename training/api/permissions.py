from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from workbench.roles import Perm


class CanManageTraining(BasePermission):
    """The admin role's training permission: what the training and evaluation screens ask of their users."""

    message = "Your role may not manage training jobs and evaluations."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm(Perm.MANAGE_TRAINING))
