"""A saved policy draft is in the audit log, as a publish is: who, which version it was started from, which fields it
changed and the taxonomy's changes; the policy page's history lists draft saves beside publishes and re-activations."""

from __future__ import annotations

import copy
import json

import pytest
from django.test import Client
from django.urls import reverse

from moderation.policies.models import PolicyVersion
from moderation.policies.services import (
    DRAFT_AUDIT_MAX_CHANGES,
    policy_version_create_draft,
    policy_version_publish,
)
from moderation.review.models import AuditEvent

pytestmark = pytest.mark.django_db

CRIMINAL = "违法犯罪"


def _with_keywords(taxonomy, *keywords: str):  # type: ignore[no-untyped-def]
    new = copy.deepcopy(taxonomy)
    next(t for c in new for t in c["tags"] if t["key"] == CRIMINAL)["keywords"].extend(keywords)
    return new


@pytest.fixture
def editor(make_user):  # type: ignore[no-untyped-def]
    return make_user("policy_editor", username="rubric-editor")


def test_a_saved_draft_is_audited_with_its_version_and_what_it_changed(policy_version, editor):
    v2 = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_with_keywords(policy_version.taxonomy, "scam2"), by=editor, notes="why"
    )
    event = AuditEvent.objects.get(action="policy.draft_save")
    assert (event.actor, event.actor_name, event.object_type, event.object_id) == (
        editor,
        "rubric-editor",
        "policyversion",
        str(v2.pk),
    )
    assert event.payload == {
        "policy": policy_version.policy_id,
        "number": v2.number,
        "started_from": policy_version.number,
        "fields": ["taxonomy", "notes"],
        "change_count": 1,
        "changes": [f"Keywords added · {CRIMINAL} (Criminal behaviour): scam2"],
    }
    # The same form sent twice returns the same draft: one save, one event.
    again = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_with_keywords(policy_version.taxonomy, "scam2"), by=editor, notes="why"
    )
    assert again.pk == v2.pk and AuditEvent.objects.filter(action="policy.draft_save").count() == 1


def test_a_draft_of_many_changes_keeps_the_first_lines_and_the_count(policy_version, editor):
    taxonomy = copy.deepcopy(policy_version.taxonomy)
    for category in taxonomy:
        for tag in category["tags"]:
            tag["keywords"].append(f"new-{tag['key']}")
            tag["criteria"] = [f"criterion for {tag['key']}"]
            tag["severities"] = ["high"]
    policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor)
    payload = AuditEvent.objects.get(action="policy.draft_save").payload
    changes = 3 * sum(len(c["tags"]) for c in taxonomy)  # keywords, criteria and severities of every tag
    assert changes > DRAFT_AUDIT_MAX_CHANGES
    assert payload["change_count"] == changes and len(payload["changes"]) == DRAFT_AUDIT_MAX_CHANGES


def test_a_refused_draft_is_not_audited(policy_version, editor):
    client = Client()
    client.force_login(editor)
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    response = client.post(url, {"mode": "json", "taxonomy_json": "[]", "notes": ""})
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="policy.draft_save").exists()


def test_the_policy_page_history_lists_draft_saves_beside_publishes(policy_version, editor, make_user):
    client = Client()
    client.force_login(editor)
    edit = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    taxonomy = json.dumps(_with_keywords(policy_version.taxonomy, "fraud9"))
    posted = client.post(edit, {"mode": "json", "taxonomy_json": taxonomy})
    assert posted.status_code == 302
    draft = PolicyVersion.objects.get(policy=policy_version.policy, status=PolicyVersion.Status.DRAFT)
    policy_version_publish(version=draft, by=editor, replaces=policy_version.number)

    reader = Client()
    reader.force_login(make_user("moderator"))  # a policy is read by every role: so is its history
    page = reader.get(reverse("moderation:policy_detail", args=[policy_version.policy.pk])).content.decode()
    history = page[page.index('id="policy-history"') : page.index("</table>", page.index('id="policy-history"'))]
    assert history.index(f"Published v{draft.number}, replacing v{policy_version.number}") < history.index(
        f"Saved draft v{draft.number} from v{policy_version.number}: changed taxonomy"
    )
    assert f"Keywords added · {CRIMINAL} (Criminal behaviour): fraud9" in history
    assert history.count("rubric-editor") == 2


def test_a_policy_without_recorded_changes_says_so(policy_version, client_as):
    page = client_as("moderator").get(reverse("moderation:policy_detail", args=[policy_version.policy.pk]))
    assert 'id="policy-history-empty"' in page.content.decode()
