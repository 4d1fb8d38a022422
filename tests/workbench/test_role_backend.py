"""The authentication backend the settings name (``workbench.backends.RoleBackend``): the group permissions come from
the statement that also reads the role names, whichever is asked first, kept on the user in an attribute of ours
(not ``ModelBackend``'s private ``_group_perm_cache``); every other permission answer stays ``ModelBackend``'s."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from workbench.roles import Perm, user_role_names

pytestmark = pytest.mark.django_db


def _group_reads(sql: list[str]) -> list[str]:
    return [s for s in sql if '"auth_user_groups"' in s]


@pytest.mark.parametrize("permission_first", [True, False])
def test_the_permissions_and_the_roles_cost_one_read_of_the_groups_in_either_order(make_user, permission_first):
    """The header asks for the roles after the view's permission check; an API view, a template or the admin may ask
    for a permission first. Under ``ModelBackend`` a permission asked first read the groups' permissions in a
    statement of its own, then the roles read the groups again."""
    labeler = User.objects.get(pk=make_user("labeler").pk)  # a fresh object: nothing read yet
    with CaptureQueriesContext(connection) as ctx:
        if permission_first:
            assert labeler.has_perm(Perm.CORRECT_COT) and not labeler.has_perm(Perm.REVIEW_VIDEO)
            assert user_role_names(labeler) == ["labeler"]
        else:
            assert user_role_names(labeler) == ["labeler"]
            assert labeler.has_perm(Perm.CORRECT_COT) and not labeler.has_perm(Perm.REVIEW_VIDEO)
        assert Perm.CORRECT_COT in labeler.get_all_permissions()
        assert labeler.get_group_permissions() == {Perm.CORRECT_COT}
    sql = [q["sql"] for q in ctx.captured_queries]
    assert len(_group_reads(sql)) == 1, sql
    assert len(sql) == 2, sql  # the groups with their permissions, the user's own permissions
    assert not hasattr(labeler, "_group_perm_cache")  # Django's private cache is neither set nor relied on


def test_a_users_own_permissions_and_a_superusers_and_an_inactive_users_stay_model_backends(make_user):
    moderator = make_user("moderator")
    moderator.user_permissions.add(Permission.objects.get(codename="edit_policy"))
    moderator = User.objects.get(pk=moderator.pk)
    assert moderator.has_perm(Perm.EDIT_POLICY) and moderator.has_perm(Perm.REVIEW_VIDEO)
    assert not moderator.has_perm(Perm.MANAGE_TRAINING)

    superuser = User.objects.get(pk=make_user(None, is_superuser=True).pk)
    assert Perm.MANAGE_TRAINING in superuser.get_all_permissions()  # every permission, as ModelBackend says
    assert superuser.get_group_permissions() == {
        f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")
    }

    gone = make_user("admin", is_active=False)
    gone = User.objects.get(pk=gone.pk)
    assert not gone.has_perm(Perm.REVIEW_VIDEO) and gone.get_all_permissions() == set()
    assert not moderator.has_perm(Perm.REVIEW_VIDEO, obj=moderator)  # per-object: none, as before


def test_a_role_given_shows_on_the_next_request(make_user):
    """Kept on the user object (one a request): a role given now is seen by the next request's user."""
    user = make_user(None)
    client = Client()
    client.force_login(user)
    assert client.get(reverse("moderation:ops_dashboard")).status_code == 403
    user.groups.add(Group.objects.get(name="admin"))
    assert client.get(reverse("moderation:ops_dashboard")).status_code == 200


def test_a_session_signed_in_under_model_backend_stays_signed_in(make_user):
    """Sessions signed in before the settings named ``RoleBackend`` hold ``ModelBackend``'s path, which Django signs
    out once it is no longer listed: deploying the backend would have signed every reviewer out."""
    user = make_user("admin")
    client = Client()
    client.force_login(user)
    session = client.session
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session.save()

    response = client.get(reverse("moderation:ops_dashboard"))
    assert response.status_code == 200, response.status_code
    assert client.session[BACKEND_SESSION_KEY] == "workbench.backends.RoleBackend"
    assert client.session[SESSION_KEY] == str(user.pk)
    assert client.get(reverse("moderation:ops_dashboard")).status_code == 200
