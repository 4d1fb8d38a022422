"""A form's address opened with a GET (the address bar after a refused form was shown there, a bookmark, a reload)
leads to the screen the form belongs to, for every POST-only route in the URLconf (``workbench/form_routes.py``)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.hardening.route_world import HELD_BY_ITS_HOLDER, route_world
from tests.hardening.test_route_matrix import ACCESS, NOT_OURS, PUBLIC, _allowed, _routes, _visitors


@pytest.mark.django_db
def test_every_form_address_opened_with_a_get_leads_to_its_screen(make_user, settings, tmp_path):
    settings.TRAINING_OUTPUT_DIR = tmp_path
    visitors = _visitors(make_user)
    holder = visitors["moderator"][2]
    world = route_world(holder=holder)
    wrong: list[str] = []
    checked: set[str] = set()
    for name, pattern, _params in _routes():
        if name.startswith(NOT_OURS) or ACCESS[name][0] != "POST" or name in checked:
            continue
        url = world.url(name, pattern)
        if not url or url.startswith("/api/"):  # the API answers a wrong method itself, in JSON
            continue
        checked.add(name)
        access = ACCESS[name][1]
        allowed = [
            (w, client, user)
            for w, (client, perms, user) in visitors.items()
            if perms is not None and (access == PUBLIC or _allowed(access, perms))
        ]
        # The holder of the held items first, so that a held item's screen opens for who holds it.
        allowed.sort(key=lambda v: v[2] != holder)
        who, client, _user = allowed[0]
        response = client.get(url, {"label": "x"})
        # A form address (POST-only) is sent on (303); a route that is also a page answers GET itself (a redirect).
        if response.status_code not in (302, 303):
            wrong.append(f"GET {url} as {who}: {response.status_code}, expected 303 to its screen")
            continue
        screen = response["Location"]
        page = client.get(screen, follow=True)
        if page.status_code != 200 or not page["Content-Type"].startswith("text/html"):
            wrong.append(f"GET {url} → {screen} as {who}: {page.status_code} {page['Content-Type']}")
        if response.status_code == 303 and client.head(url).status_code != 303:
            wrong.append(f"HEAD {url}: not sent to its screen")
    assert not wrong, "\n".join(wrong)
    assert {"moderation:tag_edit", "moderation:webhook_endpoint_add", "logout"} <= checked and len(checked) >= 40
    assert not set(HELD_BY_ITS_HOLDER) & checked  # pages, not form addresses


@pytest.mark.django_db
def test_a_refused_forms_address_reloaded_goes_back_to_its_screen_and_saves_nothing(client_as):
    from moderation.tagging.models import Tag

    editor = client_as("policy_editor")
    tag = Tag.objects.create(name="火锅")
    url = reverse("moderation:tag_edit", args=[tag.pk])

    response = editor.get(url, {"name": ""})  # a reload of the address a refused row form was shown at

    assert response.status_code == 303 and response["Location"] == reverse("moderation:tag_vocabulary")
    tag.refresh_from_db()
    assert tag.name == "火锅"
    assert editor.put(url).status_code == 405  # other methods are still refused, with what the address takes
    assert editor.put(url)["Allow"] == "POST"
