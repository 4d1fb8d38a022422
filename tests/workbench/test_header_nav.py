"""The header fits one line: an admin's sixteen links wrapped it to two at 1440 px. The setup links (policies,
training, integrations, the Label Studio export) fold under one "More" menu for a user who also has daily work; a
user whose only links are setup links keeps them on the bar."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse


def _header(user) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """The labels on the bar and those under "More"."""
    client = Client()
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    nav = re.search(r'<nav aria-label="Main"[^>]*>(.*?)</nav>', page, re.S)
    assert nav is not None
    more = re.search(
        r"<details class=\"nav-more\" data-nav-more>\s*<summary>More</summary>(.*?)</details>", nav[1], re.S
    )
    bar = nav[1] if more is None else nav[1].replace(more[0], "")
    links = lambda html: re.findall(r"<a href=\"[^\"]+\">([^<]+)</a>", html)  # noqa: E731
    return links(bar), links(more[1]) if more else []


@pytest.mark.django_db
def test_an_admin_sees_the_daily_work_on_the_bar_and_the_setup_under_more(make_user):
    bar, more = _header(make_user("admin"))
    assert bar == [
        "Videos", "Review queues", "Reproductions", "Tags", "Adjudications", "CoT corrections", "Tag2CoT",
    ]  # fmt: skip
    assert more == [
        "Label Studio", "Policies", "Tag vocabulary", "Training", "Cascade", "Integrations", "Operations",
    ]  # fmt: skip


@pytest.mark.django_db
def test_a_user_with_few_links_has_no_menu(make_user):
    """Served with none: its menu is there, empty and hidden, for workbench.js to fill on a window too narrow for
    the bar (tests/browser/test_header_fit_browser.py)."""
    bar, more = _header(make_user("moderator"))
    assert "Review queues" in bar and more == []
    bar, more = _header(make_user("policy_editor"))
    assert {"Policies", "Tag vocabulary"} <= set(bar) and more == []


@pytest.mark.django_db
def test_a_staff_admin_finds_the_django_admin_under_more(make_user):
    """Walk hwalk20: the review queues' settings, the retrain rules, users and groups are kept in the Django admin,
    and no screen linked to it (the training page's "edit the rules" aside): an admin had to know to type /admin/.
    A staff user finds it last under "More"; a user who may not open it (not staff) is not offered it."""
    bar, more = _header(make_user("admin", is_staff=True))
    assert more[-1] == "Django admin" and "Django admin" not in bar
    client = Client()
    client.force_login(make_user("admin", is_staff=True))
    assert f'<a href="{reverse("admin:index")}">Django admin</a>' in client.get(reverse("home")).content.decode()
    bar, more = _header(make_user("admin"))
    assert "Django admin" not in bar + more
