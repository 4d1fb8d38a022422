"""Pass 10: an adversarial pass looking where passes 1–9 did not: the same form sent twice at once (a double click,
two tabs, two admins) on the creates that check a unique name before inserting it, Celery tasks handed the id of a
row that is gone, and the names of the newer settings screens that other roles read. Each test below is a finding
and its fix: it fails on the code before the fix."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.errors import ModerationError
from moderation.integrations.models import Integration
from moderation.integrations.services import integration_create
from moderation.tagging.models import TagSet
from moderation.tagging.services import tag_set_default, tag_set_save
from tests.factories import UserFactory
from tests.races import race

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _new_set(slug: str, *, is_default: bool = False) -> TagSet:
    return tag_set_save(
        slug=slug,
        name=f"Set {slug}",
        show_threshold="0.1",
        preselect_threshold="0.9",
        max_suggestions="5",
        tag_names=[],
        create=True,
        is_default=is_default,
    )


@pytest.mark.django_db(transaction=True)
def test_add_integration_sent_twice_at_once_makes_one_and_tells_the_second_its_name_is_taken() -> None:
    """Add pressed twice (or two admins adding one platform): both requests found the name free, the second's insert
    met the unique name and was a 500 page, which the browser showed instead of the first's page with the new
    token (shown once). Now the second waits for the first and is told the name is taken, on the page's form."""
    admin = UserFactory(role="admin")
    first, second = Client(), Client()
    first.force_login(admin)
    second.force_login(admin)
    url = reverse("moderation:integration_add")

    raced = race(
        lambda: first.post(url, {"name": "Acme shorts", "rate_limit": ""}),
        lambda: second.post(url, {"name": "Acme shorts", "rate_limit": ""}),
    )

    assert raced.second_waited
    assert raced.first.status_code == 302  # to the page that shows the new token once
    assert not isinstance(raced.second, Exception), raced.second
    assert raced.second.status_code < 500
    assert "An integration named “Acme shorts” already exists." in raced.second.content.decode()
    assert list(Integration.objects.values_list("name", flat=True)) == ["Acme shorts"]


@pytest.mark.django_db(transaction=True)
def test_a_tag_set_created_twice_at_once_is_made_once_and_the_second_told_its_short_name_is_taken() -> None:
    raced = race(lambda: _new_set("ads"), lambda: _new_set("ads"))

    assert raced.second_waited
    assert isinstance(raced.first, TagSet)
    assert isinstance(raced.second, ModerationError), raced.second
    assert "A tag set “ads” already exists." in str(raced.second)
    assert TagSet.objects.filter(slug="ads").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_tag_sets_made_the_default_at_once_leave_one_default() -> None:
    """Each save cleared the defaults it could see, and neither could see the other's new set: both stayed the
    default, and neither could then stop being it ("Another tag set must be made the default first")."""
    tag_set_default()

    raced = race(lambda: _new_set("ads", is_default=True), lambda: _new_set("kids", is_default=True))

    assert raced.second_waited
    assert isinstance(raced.first, TagSet) and isinstance(raced.second, TagSet)
    assert list(TagSet.objects.filter(is_default=True).values_list("slug", flat=True)) == ["kids"]


@pytest.mark.django_db
def test_the_dataset_export_task_given_a_dataset_that_is_gone_does_nothing_instead_of_failing() -> None:
    """Every task given the id of a row that is gone returns quietly (probed: all 22 tasks taking an id); the
    Hugging Face export of a dataset raised ``DoesNotExist``, a failed task in the worker's log for each delivery."""
    from training.tasks import export_dataset

    assert export_dataset.run(987_654_321) == ""


@pytest.mark.django_db
def test_tag_set_and_integration_names_are_stored_without_bidi_controls() -> None:
    """A tag set's name is read by every moderator on a tags item (the set picker) and its description on the
    vocabulary screen; an integration's name by the admins and in every refusal its platform is sent. Tag names
    refuse invisible bidi controls, video titles and notes lose them; these kept them, so "ads\u202eefas" displayed
    as "adssafe" reversed into another word."""
    saved = tag_set_save(
        slug="ads",
        name=f"Ads \u202eefas{CONTROLS}",
        description=f"Call \u202e0011 2233\u202c now{CONTROLS}",
        show_threshold="0.1",
        preselect_threshold="0.9",
        max_suggestions="5",
        tag_names=[],
        create=True,
    )
    integration, _token = integration_create(name=f"Acme \u202eshorts{CONTROLS}")

    saved.refresh_from_db()
    integration.refresh_from_db()
    assert (saved.name, saved.description) == ("Ads efas", "Call 0011 2233 now")
    assert integration.name == "Acme shorts"
    with pytest.raises(ModerationError, match="needs a name"):
        integration_create(name=CONTROLS)  # nothing visible left: no name
