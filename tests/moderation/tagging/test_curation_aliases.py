"""The curation screen's "parent" and "alias of" boxes take a tag's alias as the vocabulary's parent box does
(``selectors.tag_named_or_aliased``): the demo vocabulary's names are Chinese, its aliases English, and "food" typed
for 美食 was refused as "not a tag in the vocabulary"."""

from __future__ import annotations

import pytest

from moderation.tagging import services
from moderation.tagging.models import Tag, TagProposal

pytestmark = pytest.mark.django_db


def test_the_alias_of_box_takes_an_alias_in_any_case_and_says_which_tag_it_stood_for(client_as) -> None:  # type: ignore[no-untyped-def]
    services.tags_import(lines=["游戏\tgames, gaming", "美食\tfood"])
    proposal = TagProposal.objects.create(name="剧本杀", key="剧本杀")
    editor = client_as("policy_editor")

    row = editor.post(
        f"/tags/proposals/{proposal.pk}/", {"action": "merge", "target": "Gaming"}, HTTP_HX_REQUEST="true"
    )

    assert row.status_code == 200
    assert "Made an alias of an existing tag" in row.content.decode()
    assert "“Gaming” is an alias of “游戏”." in row.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == TagProposal.Status.MERGED and proposal.tag == Tag.objects.get(name="游戏")
    assert "剧本杀" in Tag.objects.get(name="游戏").aliases

    unknown = TagProposal.objects.create(name="宠物蛋", key="宠物蛋")
    refused = editor.post(
        f"/tags/proposals/{unknown.pk}/", {"action": "merge", "target": "gam"}, HTTP_HX_REQUEST="true"
    )
    assert "Alias of “gam” is not a tag in the vocabulary. Type the name of a tag or one of its aliases." in (
        refused.content.decode()
    )
    assert TagProposal.objects.get(pk=unknown.pk).status == TagProposal.Status.PENDING


def test_the_parent_box_takes_an_alias(client_as) -> None:  # type: ignore[no-untyped-def]
    services.tags_import(lines=["美食\tfood, cooking"])
    proposal = TagProposal.objects.create(name="火锅", key="火锅")

    response = client_as("policy_editor").post(
        f"/tags/proposals/{proposal.pk}/", {"action": "accept", "name": "火锅", "parent": "FOOD"}, follow=True
    )

    assert "“火锅”: added to the vocabulary. Parent: “美食” (“FOOD” is its alias)." in response.content.decode()
    assert Tag.objects.get(name="火锅").parent == Tag.objects.get(name="美食")
