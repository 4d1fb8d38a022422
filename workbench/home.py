"""The home page is made of panels that the apps register for the roles they serve.

``workbench`` never imports the apps (imports point one way), so each app registers its panels in its
``AppConfig.ready``: a permission, a template and a function that reads what the panel shows for a
user. The home page shows the panels the signed-in user's permissions allow, in ``order``.

A panel's single-row counts (``counts``: named ``workbench.db.aggregate_row`` queries) are read for every panel
shown in one statement (``aggregate_rows_read``) and handed to its ``context`` as ``counted``: an admin's home read
nine such aggregates, one statement each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from workbench.db import aggregate_rows_read


@dataclass(frozen=True)
class HomePanel:
    key: str
    perm: str
    template: str
    # ``context(user)``, or ``context(user, counted)`` for a panel with ``counts``: its rows by name, read.
    context: Callable[..., dict[str, Any]]
    order: int = 50
    counts: Callable[[User], dict[str, QuerySet[Any]]] | None = None


_PANELS: dict[str, HomePanel] = {}


def home_panel_register(panel: HomePanel) -> None:
    """Add (or replace, by ``key``) a panel of the home page."""
    _PANELS[panel.key] = panel


def home_panels_for(*, user: User) -> list[dict[str, Any]]:
    """The panels ``user`` may see, each as ``{"key", "template", **its context}``; every panel's counts in one
    statement."""
    panels = [p for p in sorted(_PANELS.values(), key=lambda p: (p.order, p.key)) if user.has_perm(p.perm)]
    wanted = {(p.key, name): qs for p in panels if p.counts is not None for name, qs in p.counts(user).items()}
    read = aggregate_rows_read({f"{key}__{name}": qs for (key, name), qs in wanted.items()})
    shown = []
    for panel in panels:
        if panel.counts is None:
            context = panel.context(user)
        else:
            counted = {name: read[f"{key}__{name}"] for key, name in wanted if key == panel.key}
            context = panel.context(user, counted)
        shown.append({"key": panel.key, "template": panel.template, **context})
    return shown
