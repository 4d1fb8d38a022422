"""The authentication backend the settings name: Django's ``ModelBackend``, whose group permissions come from the
read that also names the user's roles (``workbench.roles.user_roles``)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.backends import ModelBackend

from workbench.roles import user_roles


class RoleBackend(ModelBackend):
    """``ModelBackend`` with one change: an active, non-superuser user's group permissions are the ones
    :func:`~workbench.roles.user_roles` read with the role names, in one statement for both, whichever is asked
    first (the permission check or the header). ``ModelBackend`` would read the groups' permissions in a statement
    of its own. A superuser's permissions (every one), an inactive or anonymous user's (none) and per-object checks
    (none) stay ``ModelBackend``'s; so do the user's own permissions, and ``get_all_permissions`` (theirs and their
    groups', through :meth:`get_group_permissions`)."""

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None or user_obj.is_superuser:
            return super().get_group_permissions(user_obj, obj=obj)
        return set(user_roles(user_obj).permissions)

    async def aget_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return await sync_to_async(self.get_group_permissions)(user_obj, obj)
