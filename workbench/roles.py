"""Roles are Django groups holding permissions; views and APIs check permissions server-side."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required as django_login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class Perm:
    UPLOAD_VIDEO = "moderation.upload_video"
    REVIEW_VIDEO = "moderation.review_video"
    EDIT_POLICY = "moderation.edit_policy"
    CORRECT_COT = "annotation.correct_cot"
    MANAGE_TRAINING = "training.manage_training"
    MANAGE_INTEGRATIONS = "moderation.manage_integrations"


ROLE_PERMISSIONS: dict[str, list[str]] = {
    "moderator": [Perm.UPLOAD_VIDEO, Perm.REVIEW_VIDEO],
    "labeler": [Perm.CORRECT_COT],
    "policy_editor": [Perm.EDIT_POLICY],
    "admin": [
        Perm.UPLOAD_VIDEO,
        Perm.REVIEW_VIDEO,
        Perm.CORRECT_COT,
        Perm.EDIT_POLICY,
        Perm.MANAGE_TRAINING,
        Perm.MANAGE_INTEGRATIONS,
    ],
}
ROLES = tuple(ROLE_PERMISSIONS)


def admin_search_view_permissions() -> list[str]:
    """View permission on every model a Django admin form chooses by search (``autocomplete_fields``).

    The admin's search endpoint answers only users who may view the model searched: without these, a
    non-superuser staff member with the admin role got a 403 from every search box (their form could not
    choose a video, a decision or a user). View only: the role changes nothing in the admin through them.
    Read off the registered admins, so a new search box brings its permission with it."""
    from django.contrib import admin

    found: set[str] = set()
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.autocomplete_fields:
            relation = model._meta.get_field(name).remote_field
            if relation is not None:
                remote = relation.model._meta
                found.add(f"{remote.app_label}.view_{remote.model_name}")
    return sorted(found)


def role_permissions() -> dict[str, list[str]]:
    """Each role's permissions as its group holds them: :data:`ROLE_PERMISSIONS`, and for the admin role
    the view permissions the admin's search boxes need (:func:`admin_search_view_permissions`)."""
    roles = {role: list(perms) for role, perms in ROLE_PERMISSIONS.items()}
    roles["admin"] += admin_search_view_permissions()
    return roles


def sync_role_groups(*, app_config: Any = None, **_: Any) -> None:
    """Create the role groups and give each exactly its permissions (idempotent).

    Connected to ``post_migrate``, which Django sends once per app after a migrate or a flush (every
    transactional test ends with one): the groups are synced once, after the last app's signal, when
    every app's permissions exist, and with one query for all the permissions they name."""
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    if app_config is not None:
        with_models = [c for c in apps.get_app_configs() if c.models_module is not None]
        if with_models and app_config is not with_models[-1]:
            return
    roles = role_permissions()
    by_name = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.filter(
            codename__in={dotted.split(".")[1] for perms in roles.values() for dotted in perms}
        ).values_list("pk", "content_type__app_label", "codename")
    }
    for role, perms in roles.items():
        group, _created = Group.objects.get_or_create(name=role)
        group.permissions.set([by_name[dotted] for dotted in perms if dotted in by_name])


@dataclass(frozen=True)
class UserRoles:
    """A signed-in user's roles (their groups' names, sorted) and what those groups permit (``app_label.codename``)."""

    names: list[str]
    permissions: frozenset[str]


def user_roles(user: Any) -> UserRoles:
    """``user``'s roles and their groups' permissions, read in one statement once per user object (one per request)
    and kept on it (``workbench_roles``, an attribute of ours, not Django's).

    Both halves are needed on every page: the permission check (``RoleBackend``, the backend the settings name,
    answers the group permissions from here) and the header, which names the roles. Before, each page read the
    user's groups twice, once for the permissions and once for the names."""
    cached: UserRoles | None = getattr(user, "workbench_roles", None)
    if cached is not None:
        return cached
    from django.contrib.auth.models import Group

    names: set[str] = set()
    perms: set[str] = set()
    for name, app_label, codename in Group.objects.filter(user=user).values_list(
        "name", "permissions__content_type__app_label", "permissions__codename"
    ):
        names.add(name)
        if codename is not None:
            perms.add(f"{app_label}.{codename}")
    user.workbench_roles = UserRoles(names=sorted(names), permissions=frozenset(perms))
    return user.workbench_roles


def user_role_names(user: Any) -> list[str]:
    """The names of ``user``'s groups (their roles), sorted (:func:`user_roles`)."""
    return user_roles(user).names


def _refusal(request: HttpRequest, *wanted: str) -> str:
    """Why a signed-in user is turned away, in role names (not the permissions' code names)."""
    needed = [role.replace("_", " ") for role, perms in ROLE_PERMISSIONS.items() if set(wanted) & set(perms)]
    mine = [g.replace("_", " ") for g in user_role_names(request.user)]
    has = f"you are signed in as {request.user.get_username()} ({', '.join(mine) or 'no role'})"
    return f"Your role may not do this: it needs the {' or '.join(needed)} role; {has}."


def login_next(request: HttpRequest) -> str:
    """Where to land after signing in. A form sent after the session expired names a POST-only address:
    landing there with a GET was a blank "405" page, so the user goes back to the page the form was on
    (its Referer, same host only), or home; the form itself is not resent."""
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return "/"


def permission_required(
    perm: str, *or_perms: str
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Anonymous users go to the login page; signed-in users without ``perm`` (or any of ``or_perms``) get 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(login_next(request))
            user_role_names(request.user)  # the groups' permissions and names in one statement, for the header
            if not any(request.user.has_perm(p) for p in (perm, *or_perms)):
                raise PermissionDenied(_refusal(request, perm, *or_perms))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def login_required(view: _View) -> _View:
    """Django's ``login_required``, reading the signed-in user's roles and their permissions in one statement
    first (:func:`user_role_names`), as :func:`permission_required` does: these pages check a permission in the
    view and name the roles in the header."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user_role_names(request.user)
        return view(request, *args, **kwargs)

    return cast(_View, django_login_required(wrapped))


def nav_context(request: HttpRequest) -> dict[str, Any]:
    """What the navigation shows: only the areas the user's role may use."""
    user = request.user
    if not user.is_authenticated:
        return {"nav": {}}
    groups = user_role_names(user)
    areas = {
        "upload": user.has_perm(Perm.UPLOAD_VIDEO),
        "review": user.has_perm(Perm.REVIEW_VIDEO),
        "correct": user.has_perm(Perm.CORRECT_COT),
        "policy": user.has_perm(Perm.EDIT_POLICY),
        "training": user.has_perm(Perm.MANAGE_TRAINING),
        "integrations": user.has_perm(Perm.MANAGE_INTEGRATIONS),
    }
    links = _nav_links(areas)
    if user.is_staff:
        # The review queues, retrain rules, users and groups are set in the Django admin, which no screen linked to
        # but the training page's retrain rules: an admin had to know to type /admin/ to find a queue's settings.
        links["more" if links["more"] else "links"].append(("Django admin", reverse("admin:index")))
    return {"nav": {**areas, **links, "roles": groups, **_who(user, groups)}}


# The header's links, area by area, in the order they are shown. The daily work (videos, queues, corrections) is
# "work"; the rest sets up the work ("setup": policies, training, integrations, the Label Studio export).
_NAV_LINKS: tuple[tuple[str, str, str, str], ...] = (
    ("upload", "work", "Videos", "moderation:video_list"),
    ("review", "work", "Review queues", "moderation:queue"),
    ("review", "work", "Reproductions", "moderation:repro_queue"),
    ("review", "work", "Tags", "moderation:tag_queue"),
    ("review", "work", "Adjudications", "annotation:adjudication_list"),
    ("correct", "work", "CoT corrections", "annotation:correction_list"),
    ("correct", "work", "Tag2CoT", "annotation:tag2cot_list"),
    ("correct", "setup", "Label Studio", "annotation:labelstudio_export"),
    ("policy", "setup", "Policies", "moderation:policy_list"),
    ("policy", "setup", "Tag vocabulary", "moderation:tag_vocabulary"),
    ("training", "setup", "Training", "training:job_list"),
    ("training", "setup", "Cascade", "moderation:cascade"),
    ("integrations", "setup", "Integrations", "moderation:integration_list"),
    ("integrations", "setup", "Operations", "moderation:ops_dashboard"),
)


def _nav_links(areas: dict[str, bool]) -> dict[str, list[tuple[str, str]]]:
    """The header's links: "links" on the bar, "more" folded under one "More" menu.

    An admin sees every area: sixteen links wrapped the header to two lines at 1440 px. The setup links are folded
    only for a user who also has daily work links, so a policy editor (or an integrator) still finds their own few
    links on the bar, and a moderator's header is as it was. This is what a browser without scripts shows: in a
    browser, workbench.js (``navFit``) folds by the width there is instead, every user's links alike (no CSS rule
    can tell whether a bar of links overflows; a container query would fold at fixed widths guessed for today's
    labels)."""
    shown = [(kind, label, reverse(name)) for area, kind, label, name in _NAV_LINKS if areas[area]]
    has_work = any(kind == "work" for kind, _, _ in shown)
    fold = has_work and len(shown) > _NAV_LINKS_BEFORE_FOLDING
    return {
        "links": [(label, url) for kind, label, url in shown if not (fold and kind == "setup")],
        "more": [(label, url) for kind, label, url in shown if fold and kind == "setup"],
    }


# Up to this many links sit on the bar unfolded (a moderator who also corrects has seven).
_NAV_LINKS_BEFORE_FOLDING = 8


def _who(user: Any, groups: list[str]) -> dict[str, Any]:
    """Who the header says is signed in: the name once, then the roles that add to it, in words ("policy editor").

    The demo users are named after their role: the header read "moderator · moderator". A role spelled as the
    name is left out; a user with no other role shows the name alone."""
    name = user.get_full_name().strip() or user.get_username()
    roles = [g.replace("_", " ") for g in groups]
    said = {name.casefold(), user.get_username().replace("_", " ").casefold()}
    return {"name": name, "header_roles": [r for r in roles if r.casefold() not in said]}
