"""A username that reads as another user's ("аdmin" with a Cyrillic "а" beside "admin") is refused wherever a
person makes one: the admin's user form and ``createsuperuser`` (``workbench/usernames.py``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = pytest.mark.django_db

CYRILLIC_A_ADMIN = "\u0430dmin"  # "аdmin": the first letter is CYRILLIC SMALL LETTER A
PASSWORD = "plum-harbour-kettle-81"


def _admin_site() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", PASSWORD))
    return client


def _add(client: Client, username: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/admin/auth/user/add/",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )


def test_the_admins_user_form_refuses_a_lookalike_of_an_existing_user_and_a_mixed_script_name():
    User.objects.create_user("admin", password=PASSWORD)
    client = _admin_site()

    refused = _add(client, CYRILLIC_A_ADMIN)
    assert refused.status_code == 200
    assert "mixes Latin letters with Cyrillic ones (“а”)" in refused.content.decode()
    User.objects.create_user("ops", password=PASSWORD)
    all_cyrillic = "\u043e\u0440\u0455"  # "орѕ": every letter Cyrillic, reads "ops"
    assert "looks like the existing user “ops”" in _add(client, all_cyrillic).content.decode()
    assert _add(client, "Admin").status_code == 200  # refused (Django's own case-blind check says so first)
    assert not User.objects.exclude(username__in=["admin", "root", "ops"]).exists()

    assert _add(client, "админ").status_code == 302  # a name in one alphabet, like no one's, is taken
    assert _add(client, "margarethe").status_code == 302
    assert User.objects.filter(username__in=["админ", "margarethe"]).count() == 2


def test_createsuperuser_refuses_a_lookalike_and_an_unchanged_name_still_validates():
    admin = User.objects.create_user("admin", password=PASSWORD)

    with pytest.raises(CommandError, match="mixes Latin letters"):
        call_command("createsuperuser", "--noinput", username=CYRILLIC_A_ADMIN, email="a@example.com")
    assert not User.objects.filter(username=CYRILLIC_A_ADMIN).exists()

    admin.full_clean()  # its own name is not another user's
    with pytest.raises(ValidationError, match="mixes Latin letters with Greek ones"):
        User(username="ΑDMIN", password="x").full_clean()  # a Greek capital alpha, the rest Latin capitals
    with pytest.raises(ValidationError, match="looks like the existing user “admin”"):
        User(username="Admin", password="x").full_clean()
