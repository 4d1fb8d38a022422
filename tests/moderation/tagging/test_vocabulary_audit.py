"""Vocabulary and tag-set changes are in the audit log: who created, edited, retired or imported tags, set
parents, or created or changed a tag set's tags and thresholds, and what each change was. They were not: a
threshold that hid every suggestion, or a retired tag, had no author to ask."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from moderation.review.models import AuditEvent
from moderation.tagging.models import Tag, TagImport, TagSet
from moderation.tagging.tasks import import_vocabulary
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _auditor() -> Client:
    """Someone who reads the whole audit log (the admin's audit log screen)."""
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _event(action: str) -> AuditEvent:
    [event] = AuditEvent.objects.filter(action=action)
    return event


def _shown_in_the_audit_log(admin: Client, event: AuditEvent, *words: str) -> None:
    """The event is a row of the audit log screen (who, what, about which object) and its page says what changed."""
    listed = admin.get(reverse("admin:moderation_auditevent_changelist")).content.decode()
    assert event.action in listed and event.actor_name in listed, event.action
    page = admin.get(reverse("admin:moderation_auditevent_change", args=[event.pk])).content.decode()
    for word in words:
        assert word in page, (event.action, word)


def test_tag_imports_edits_retirements_and_parents_name_their_editor_and_change(
    client_as: Any, django_capture_on_commit_callbacks: Any
) -> None:
    editor_client = client_as("policy_editor")
    editor = editor_client.session["_auth_user_id"]
    auditor = _auditor()
    url = reverse("moderation:tag_import")
    with django_capture_on_commit_callbacks(execute=False):
        editor_client.post(url, {"kind": "tags", "lines": "猫\t猫咪\n美食\n"})
        editor_client.post(url, {"kind": "hierarchy", "lines": "猫\t美食\n"})
    for job in TagImport.objects.order_by("pk"):
        assert import_vocabulary(job.pk) == "done"

    imported = _event("tags.import")
    assert str(imported.actor_id) == editor and imported.object_type == "vocabularyversion"
    assert imported.payload["created"] == ["猫", "美食"] and imported.payload["created_count"] == 2
    _shown_in_the_audit_log(auditor, imported, "美食", "tags.import")
    parents = _event("tags.parents_import")
    assert str(parents.actor_id) == editor and parents.payload["changed"] == {"猫": [None, "美食"]}
    _shown_in_the_audit_log(auditor, parents, "tags.parents_import")

    cat = Tag.objects.get(name="猫")
    edit = reverse("moderation:tag_edit", args=[cat.pk])
    editor_client.post(edit, {"name": "猫", "aliases": "猫咪, kitty", "parent": "美食", "is_active": "on"})
    edited = _event("tag.edit")
    assert (edited.object_type, edited.object_id) == ("tag", str(cat.pk))
    assert edited.payload["aliases"] == [["猫咪"], ["猫咪", "kitty"]] and "name" not in edited.payload
    _shown_in_the_audit_log(auditor, edited, "kitty")

    editor_client.post(edit, {"name": "猫", "aliases": "猫咪, kitty", "parent": "美食"})  # unticked: retired
    retired = _event("tag.retire")
    assert retired.payload["is_active"] == [True, False] and str(retired.actor_id) == editor
    _shown_in_the_audit_log(auditor, retired, "tag.retire")
    editor_client.post(edit, {"name": "猫", "aliases": "猫咪, kitty", "parent": "美食", "is_active": "on"})
    assert _event("tag.reactivate").payload["is_active"] == [False, True]
    # A refused edit changed nothing and records nothing.
    editor_client.post(edit, {"name": "美食", "aliases": "", "is_active": "on"})
    assert AuditEvent.objects.filter(action__startswith="tag.").count() == 3


def test_tag_set_creation_and_threshold_edits_name_their_editor_and_change(client_as: Any) -> None:
    from moderation.tagging.services import tags_import

    tags_import(lines=["萌宠", "美食"])
    editor = client_as("policy_editor")
    auditor = _auditor()
    url = reverse("moderation:tag_set_save")
    form = {"create": "1", "slug": "ads-safe", "name": "Ads safe", "show_threshold": "0.1"}
    form |= {"preselect_threshold": "0.95", "max_suggestions": "8", "tags": "萌宠"}
    editor.post(url, form)
    created = _event("tag_set.create")
    ads = TagSet.objects.get(slug="ads-safe")
    assert (created.object_type, created.object_id, created.actor_name) == ("tagset", str(ads.pk), created.actor_name)
    assert created.actor_name and created.payload["show_threshold"] == [None, 0.1]
    assert created.payload["tags"] == [None, ["萌宠"]]
    _shown_in_the_audit_log(auditor, created, "ads-safe")

    editor.post(url, {**form, "create": "", "show_threshold": "0.4", "tags": "萌宠, 美食"})
    edited = _event("tag_set.edit")
    assert edited.payload["show_threshold"] == [0.1, 0.4] and edited.payload["tags"] == [["萌宠"], ["美食", "萌宠"]]
    assert "preselect_threshold" not in edited.payload and "name" not in edited.payload  # only what changed
    _shown_in_the_audit_log(auditor, edited, "0.4")
    editor.post(url, {**form, "create": "", "show_threshold": "0.99"})  # refused: nothing recorded
    assert AuditEvent.objects.filter(action="tag_set.edit").count() == 1
