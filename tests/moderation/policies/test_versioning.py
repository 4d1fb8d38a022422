"""Versions are immutable; drafts are published into the one active version; decisions pin theirs."""

from __future__ import annotations

import copy

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from moderation.errors import ModerationError
from moderation.inference.services import decision_create_for_video
from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.services import (
    PolicyValidationError,
    policy_version_activate,
    policy_version_create_draft,
    policy_version_publish,
)
from tests.factories import SegmentFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _edited(taxonomy):  # type: ignore[no-untyped-def]
    new = copy.deepcopy(taxonomy)
    new[2]["tags"][0]["keywords"].append("magic beans")
    return new


def _snapshot(version: PolicyVersion) -> dict:
    row = PolicyVersion.objects.filter(pk=version.pk).values().get()
    return row


def test_an_edit_is_a_new_draft_and_leaves_the_old_version_untouched(policy_version, make_user):
    editor = make_user("policy_editor")
    before = _snapshot(policy_version)

    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_edited(policy_version.taxonomy), by=editor, notes=" more keywords "
    )

    assert draft.pk != policy_version.pk
    assert (draft.number, draft.status, draft.is_active) == (policy_version.number + 1, "draft", False)
    assert draft.created_by == editor and draft.notes == "more keywords"
    assert "magic beans" in draft.taxonomy[2]["tags"][0]["keywords"]
    assert (draft.safe_label, draft.output_format) == (policy_version.safe_label, policy_version.output_format)
    assert _snapshot(policy_version) == before  # every column of the old row, taxonomy included


def test_an_invalid_edit_saves_nothing_and_lists_the_problems(policy_version, make_user):
    broken = _edited(policy_version.taxonomy)
    broken[0]["tags"][1]["key"] = broken[0]["tags"][0]["key"]
    broken[1]["name"] = ""
    with pytest.raises(PolicyValidationError) as exc:
        policy_version_create_draft(policy=policy_version.policy, taxonomy=broken, by=make_user("admin"))
    assert len(exc.value.errors) == 2
    assert PolicyVersion.objects.count() == 1


@pytest.mark.parametrize("role", ["moderator", "labeler", None])
def test_only_editors_may_create_or_publish_versions(policy_version, make_user, role):
    user = make_user(role)
    with pytest.raises(ModerationError):
        policy_version_create_draft(policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=user)
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("policy_editor")
    )
    with pytest.raises(ModerationError):
        policy_version_publish(version=draft, by=user)
    draft.refresh_from_db()
    assert draft.status == "draft" and not draft.is_active


def test_publish_switches_the_active_version_and_exactly_one_stays_active(policy_version, make_user):
    editor = make_user("policy_editor")
    v2 = policy_version_create_draft(policy=policy_version.policy, taxonomy=_edited(policy_version.taxonomy), by=editor)
    assert list(PolicyVersion.objects.filter(is_active=True)) == [policy_version]

    policy_version_publish(version=v2, by=editor)

    policy_version.refresh_from_db()
    v2.refresh_from_db()
    assert (v2.status, v2.is_active) == ("published", True)
    assert (policy_version.status, policy_version.is_active) == ("published", False)
    assert PolicyVersion.objects.filter(policy=policy_version.policy, is_active=True).count() == 1

    # Publishing again is harmless; a published version cannot be "published" a second time once superseded.
    assert policy_version_publish(version=v2, by=editor).is_active
    with pytest.raises(ModerationError, match="already published"):
        policy_version_publish(version=policy_version, by=editor)

    # Rolling back activates v1 and deactivates v2 in the same transaction.
    policy_version_activate(version=policy_version, by=editor)
    assert list(PolicyVersion.objects.filter(is_active=True).values_list("number", flat=True)) == [
        policy_version.number
    ]
    v3 = policy_version_create_draft(policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=editor)
    with pytest.raises(ModerationError, match="is a draft"):
        policy_version_activate(version=v3, by=editor)


def test_the_database_refuses_two_active_versions(policy_version, make_user):
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=policy_version.taxonomy, by=make_user("admin")
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=draft.pk).update(is_active=True)


def test_new_decisions_pin_the_newly_published_version_and_old_ones_keep_theirs(policy_version, make_user):
    old_video = VideoFactory(title="Evening walk")
    SegmentFactory(video=old_video, text="buy my magic beans today")
    old = decision_create_for_video(video_id=old_video.pk)
    assert old.policy_version == policy_version and old.label == policy_version.safe_label

    editor = make_user("policy_editor")
    v2 = policy_version_create_draft(policy=policy_version.policy, taxonomy=_edited(policy_version.taxonomy), by=editor)
    policy_version_publish(version=v2, by=editor)

    new_video = VideoFactory(title="Market day")
    SegmentFactory(video=new_video, text="buy my magic beans today")
    new = decision_create_for_video(video_id=new_video.pk)

    old.refresh_from_db()
    assert new.policy_version == v2 and new.label == v2.taxonomy[2]["tags"][0]["key"]
    assert old.policy_version == policy_version and old.label == policy_version.safe_label


def test_seed_policy_creates_kuaimod_and_a_blm_guard_policy(db):
    call_command("seed_policy", verbosity=0)
    call_command("seed_policy", verbosity=0)  # idempotent

    assert sorted(Policy.objects.values_list("slug", flat=True)) == ["blm-guard-ads", "kuaimod"]
    blm = PolicyVersion.objects.get(policy__slug="blm-guard-ads", is_active=True)
    kuaimod = PolicyVersion.objects.get(policy__slug="kuaimod", is_active=True)
    assert blm.spec().output_format == "blm" and kuaimod.spec().output_format == "kuaimod"
    assert blm.spec().scenes() == {"虚假宣传", "诱导交易", "低俗擦边"}
    assert PolicyVersion.objects.count() == 2


def test_a_drafts_page_links_to_its_changes_from_the_active_version_before_the_publish_step(policy_version, make_user):
    """An editor who saved a draft reads what it changes before deciding to publish: the comparison was linked
    only from inside the publish step (and from the policy page's compare form)."""
    from django.test import Client
    from django.urls import reverse

    editor = make_user("policy_editor")
    draft = policy_version_create_draft(
        policy=policy_version.policy, taxonomy=_edited(policy_version.taxonomy), by=editor
    )
    client = Client()
    client.force_login(editor)
    page = client.get(reverse("moderation:policy_version", args=[draft.pk])).content.decode()
    diff = reverse("moderation:policy_diff", args=[policy_version.policy_id])
    link = f'<a href="{diff}?a={policy_version.pk}&amp;b={draft.pk}" id="changes-from-active">'
    assert f"{link}changes from v{policy_version.number} (active)</a>" in page
    assert "magic beans" in client.get(f"{diff}?a={policy_version.pk}&b={draft.pk}").content.decode()
    active_page = client.get(reverse("moderation:policy_version", args=[policy_version.pk])).content.decode()
    assert 'id="changes-from-active"' not in active_page  # the active version has nothing to compare with itself
