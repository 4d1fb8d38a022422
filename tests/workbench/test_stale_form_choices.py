"""The page a stale form lands on (``csrf_failure``) names the choices a form sent as ids, by the names the form sent
with them: the tags panel's ticked tags were skipped as bare numbers, so a reviewer lost them without a word."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _refused(client: Client, data: dict[str, object]) -> str:
    response = client.post("/tags/video/1/submit/", data)  # no CSRF token: refused before the view
    assert response.status_code == 403
    return response.content.decode()


def test_the_ticked_and_added_tags_are_named_not_skipped_as_numbers(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("moderator"))
    html = _refused(
        client,
        {
            "set": "recommendation",
            "tag": ["11", "42"],
            "shown": ["11", "12"],
            "_field_name": "tag:Tags you had ticked or added",
            "_choice_name": ["tag:11:火锅", "tag:12:汽车", "tag:42:舞蹈 (added by search)"],
        },
    )
    assert 'data-chosen="tag">Tags you had ticked or added: <span class="badge">火锅</span>, ' in html
    assert '<span class="badge">舞蹈 (added by search)</span>.' in html
    assert "汽车" not in html  # shown, not ticked
    assert "_choice_name" not in html and "_field_name" not in html  # not echoed as fields of their own


def test_nothing_ticked_says_none_and_names_are_escaped_from_a_signed_out_sender(db):
    html = _refused(
        Client(enforce_csrf_checks=True),
        {"_field_name": "tag:Tags you had ticked or added", "_choice_name": "tag:1:<b>x</b>"},
    )
    assert "Tags you had ticked or added: none." in html
    assert "<b>x</b>" not in html


def test_a_naming_field_cannot_echo_a_secret_field_nor_a_cross_site_post_anything(make_user):
    """The fields echoed one by one never show a password or key; a "_field_name" naming one showed it all the
    same. A post another site made (refused on its Origin) shows nothing of what it held."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("moderator"))
    data = {
        "_field_name": ["password:Your password", "api_key:Key", "csrfmiddlewaretoken:Token", "tag:Tags"],
        "password": "hunter2-secret",
        "api_key": "k-secret",
        "csrfmiddlewaretoken": "t-secret",
        "tag": "7",
        "_choice_name": "tag:7:<i>zebra-dance</i>",
    }
    html = _refused(client, data)
    assert "secret" not in html and "Your password" not in html
    assert '<span class="badge">&lt;i&gt;zebra-dance&lt;/i&gt;</span>' in html
    elsewhere = client.post("/tags/video/1/submit/", data, HTTP_ORIGIN="https://evil.example")
    assert elsewhere.status_code == 403
    assert "zebra-dance" not in elsewhere.content.decode() and "data-chosen" not in elsewhere.content.decode()
