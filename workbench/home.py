"""The home page is made of panels that the apps register for the roles they serve.

``workbench`` never imports the apps (imports point one way), so each app registers its panels in its
``AppConfig.ready``: a permission, a template and a function that reads what the panel shows for a
user. The home page shows the panels the signed-in user's permissions allow, in ``order``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User


@dataclass(frozen=True)
class HomePanel:
    key: str
    perm: str
    template: str
    context: Callable[[User], dict[str, Any]]
    order: int = 50


_PANELS: dict[str, HomePanel] = {}


def home_panel_register(panel: HomePanel) -> None:
    """Add (or replace, by ``key``) a panel of the home page."""
    _PANELS[panel.key] = panel


def home_panels_for(*, user: User) -> list[dict[str, Any]]:
    """The panels ``user`` may see, each as ``{"key", "template", **its context}``."""
    shown = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)):
        if user.has_perm(panel.perm):
            shown.append({"key": panel.key, "template": panel.template, **panel.context(user)})
    return shown
