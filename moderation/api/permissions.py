from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from workbench.roles import Perm

# Who may read moderation content (videos, decisions) through the API.
CONTENT_READERS = (Perm.REVIEW_VIDEO, Perm.UPLOAD_VIDEO, Perm.CORRECT_COT)


class CanReadContent(BasePermission):
    message = "Your role may not read moderation content."

    def has_permission(self, request: Request, view: Any) -> bool:
        return any(request.user.has_perm(p) for p in CONTENT_READERS)


class CanUploadOrReadOnly(CanReadContent):
    message = "Your role may not upload videos."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return super().has_permission(request, view)
        return request.user.has_perm(Perm.UPLOAD_VIDEO)
