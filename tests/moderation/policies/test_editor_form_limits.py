"""The structured editor posts a taxonomy at its limit; a form still too large to read gets a page saying so."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from moderation.policies.checks import editor_fields_check
from moderation.policies.editor import EDITOR_MAX_FIELDS, MAX_ROWS
from moderation.policies.models import PolicyVersion
from tests.moderation.policies.test_policy_editor_views import _structured_post

pytestmark = pytest.mark.django_db


def _at_the_limit(taxonomy: list[dict]) -> list[dict]:
    """``taxonomy`` grown to the taxonomy's limit of tags in all, each new tag in a category of its own."""
    tags = sum(len(c["tags"]) for c in taxonomy)
    extra = [
        {
            "key": f"extra_{n}",
            "name": f"Extra {n}",
            "tags": [
                {
                    "key": f"extra_{n}_tag",
                    "name": f"Extra tag {n}",
                    "keywords": [f"word {n}", f"other {n}"],
                    "criteria": [f"Shows thing {n}.", f"Says thing {n}."],
                    "severities": ["low", "medium", "high"],
                }
            ],
        }
        for n in range(MAX_ROWS - tags)
    ]
    return taxonomy + extra


def test_the_structured_editor_saves_a_taxonomy_at_the_limit_of_500_tags(client_as, policy_version):
    """Django refused a form of more than 1,000 fields with a bare 400 page before the editor read it: some 120 full
    tag rows were the most the structured editor could save, though the taxonomy allows 500."""
    taxonomy = _at_the_limit(policy_version.taxonomy)
    data = _structured_post(taxonomy, base=policy_version.pk, notes="Every tag we have.")
    assert sum(len(v) if isinstance(v, list) else 1 for v in data.values()) > 4_000  # fields sent

    response = client_as("policy_editor").post(reverse("moderation:policy_edit", args=[policy_version.policy_id]), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    draft = PolicyVersion.objects.filter(policy=policy_version.policy).latest("number")
    assert sum(len(c["tags"]) for c in draft.taxonomy) == MAX_ROWS
    assert draft.taxonomy[-1]["tags"][0]["severities"] == ["low", "medium", "high"]


def test_the_field_limit_is_held_to_what_the_editor_sends():
    assert editor_fields_check() == []
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=1_000):
        (error,) = editor_fields_check()
    assert error.id == "moderation.E001"
    assert f"at least {EDITOR_MAX_FIELDS}" in error.hint


@pytest.mark.parametrize(
    ("limits", "said"),
    [
        ({"DATA_UPLOAD_MAX_NUMBER_FIELDS": 50}, "The form sent more than 50 fields"),
        ({"DATA_UPLOAD_MAX_MEMORY_SIZE": 1024 * 1024}, "The form sent more than 1 MB of text"),
    ],
)
def test_a_form_too_large_to_read_gets_a_page_saying_what_and_what_to_do(client_as, policy_version, limits, said):
    """Past the limits the server reads, the editor's post was Django's bare "Bad Request (400)": no layout, no word
    of what was too large, nor that nothing was saved, nor a way back to the edit (kept in the browser for the
    version the edit started from: the link back keeps its ``?from=``)."""
    editor = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy_id])
    data = _structured_post(policy_version.taxonomy, base=policy_version.pk)
    data["notes"] = "x" * (1024 * 1024 + 1)
    versions = PolicyVersion.objects.count()

    with override_settings(**limits):
        response = editor.post(
            url, data, headers={"Accept": "text/html", "Referer": f"http://testserver{url}?from={policy_version.pk}"}
        )

    assert response.status_code == 400
    page = " ".join(response.content.decode().split())
    assert '<a class="brand"' in page  # the site's layout
    assert "<h1>Not saved: too much in one form</h1>" in page
    assert f"{said}, the most the server reads in one request. Nothing was saved or changed." in page
    assert "keeps your unsent edit in this browser and puts it back when you open it again" in page
    assert f'<a href="{url}?from={policy_version.pk}">Back to the form' in page
    assert PolicyVersion.objects.count() == versions
