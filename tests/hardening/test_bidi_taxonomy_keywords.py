"""Taxonomy keywords lost their invisible bidi controls last: names and criteria were stored clean, keyword matching
ignored the controls, but the keywords themselves were saved as typed, so the editor, the version's page and the
model's prompt showed "we\\u2066chat" as something other than what is matched. Stored clean now (``taxonomy_normalise``),
with a data migration (0062) for the versions saved before."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.apps import apps

from moderation.policies.models import PolicyVersion
from moderation.policies.services import PolicyValidationError, policy_version_create_draft
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _with_keywords(taxonomy: list[dict[str, Any]], keywords: list[str]) -> list[dict[str, Any]]:
    taxonomy = [dict(c, tags=[dict(t) for t in c["tags"]]) for c in taxonomy]
    taxonomy[0]["tags"][0]["keywords"] = keywords
    return taxonomy


def test_keywords_are_saved_without_bidi_controls(policy_version: PolicyVersion) -> None:
    editor = UserFactory(role="policy_editor")
    taxonomy = _with_keywords(policy_version.taxonomy, [f"we\u2066chat{CONTROLS}", "\u202eniap", " refund "])

    draft = policy_version_create_draft(policy=policy_version.policy, taxonomy=taxonomy, by=editor)

    assert draft.taxonomy[0]["tags"][0]["keywords"] == ["wechat", "niap", "refund"]


def test_a_keyword_of_controls_alone_or_repeating_another_once_they_are_gone_is_refused(
    policy_version: PolicyVersion,
) -> None:
    editor = UserFactory(role="policy_editor")
    with pytest.raises(PolicyValidationError) as empty:
        policy_version_create_draft(
            policy=policy_version.policy,
            taxonomy=_with_keywords(policy_version.taxonomy, ["ok", "\u202e\u200f"]),
            by=editor,
        )
    assert any("non-empty" in e for e in empty.value.errors), empty.value.errors
    with pytest.raises(PolicyValidationError) as repeat:
        policy_version_create_draft(
            policy=policy_version.policy,
            taxonomy=_with_keywords(policy_version.taxonomy, ["wechat", "We\u2066Chat"]),
            by=editor,
        )
    assert any("repeats 'WeChat'" in e for e in repeat.value.errors), repeat.value.errors


def test_keywords_stored_before_lose_their_bidi_controls_once(policy_version: PolicyVersion) -> None:
    migration = import_module("moderation.migrations.0063_taxonomy_keywords_without_bidi_controls")
    taxonomy = _with_keywords(policy_version.taxonomy, [f"we\u2066chat{CONTROLS}", "WeChat", "\u202e", "refund"])
    PolicyVersion.objects.filter(pk=policy_version.pk).update(taxonomy=taxonomy)
    untouched = PolicyVersion.objects.create(
        policy=policy_version.policy, number=policy_version.number + 1, taxonomy=_with_keywords(taxonomy, ["视频"])
    )

    migration.strip_bidi_controls(apps, None)

    cleaned = PolicyVersion.objects.get(pk=policy_version.pk).taxonomy
    assert cleaned[0]["tags"][0]["keywords"] == ["wechat", "refund"]
    assert cleaned[0]["tags"][0]["key"] == taxonomy[0]["tags"][0]["key"]
    assert cleaned[0]["tags"][1:] == taxonomy[0]["tags"][1:] and cleaned[1:] == taxonomy[1:]
    assert PolicyVersion.objects.get(pk=untouched.pk).taxonomy[0]["tags"][0]["keywords"] == ["视频"]
