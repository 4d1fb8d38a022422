"""The header says who is signed in: the name once, and the roles only where they add to it (a role walk found
"moderator · moderator" on every screen of the demo users, who are named after their role)."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse


def _who(user) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    found = re.search(r'<div class="who">(.*?)</div>', client.get(reverse("home")).content.decode(), re.S)
    assert found is not None
    return (
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split()).replace(" ·", "·").replace("·", " ·")
    )


@pytest.mark.django_db
def test_a_demo_user_named_after_their_role_is_named_once(make_user):
    assert _who(make_user("moderator", username="moderator")).startswith("moderator · API token")
    assert _who(make_user("policy_editor", username="policy_editor")).startswith("policy_editor · API token")


@pytest.mark.django_db
def test_a_role_that_adds_information_is_said_once_in_words(make_user):
    alice = make_user("policy_editor", username="alice")
    assert _who(alice).startswith("alice · policy editor · API token")
    # A second role beside the one the name repeats: only that one is added.
    moderator = make_user("moderator", username="moderator")
    moderator.groups.add(Group.objects.get(name="labeler"))
    assert _who(moderator).startswith("moderator · labeler · API token")


@pytest.mark.django_db
def test_a_full_name_is_shown_instead_of_the_login(make_user):
    user = make_user("labeler", username="lb7", first_name="Wang", last_name="Fang")
    assert _who(user).startswith("Wang Fang · labeler · API token")
