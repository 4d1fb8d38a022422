"""Two tags whose names are one word once normalised (case, width: "DJ", "dj", "ＤＪ") were both accepted, by an import,
a rename or a curator, without a word: a video's "dj" then stood for both, as an alias held by two tags would (walk
hui22). Refused by the rule every tag's words follow (``services._word_clash``), with the tag it clashes with named;
a pair left from before the rule stays editable and is listed on the curation screen."""

from __future__ import annotations

import pytest

from moderation.errors import ModerationError
from moderation.tagging import selectors
from moderation.tagging.models import Tag, TagProposal
from moderation.tagging.services import _index_fields, tag_proposal_decide, tag_update, tags_import

pytestmark = pytest.mark.django_db

WHY = "(names match ignoring case and width)"


def test_an_import_refuses_a_name_that_is_another_tags_once_normalised() -> None:
    report = tags_import(lines=["DJ\tdisc jockey", "dj", "音乐"])
    assert report.errors == [f"line 2: “dj” is the name of another tag, “DJ” {WHY}; not added"]
    later = tags_import(lines=["ＤＪ", "DJ\tdeejay"])  # a new look-alike refused; the tag itself takes new aliases
    assert later.errors == [f"line 1: “ＤＪ” is the name of another tag, “DJ” {WHY}; not added"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["DJ", "音乐"]
    assert Tag.objects.get(name="DJ").aliases == ["disc jockey", "deejay"]


def test_a_rename_a_reactivation_and_a_curator_are_refused_the_same(make_user) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["DJ", "音乐", "dj"])  # "dj" refused: 2 tags
    music, editor = Tag.objects.get(name="音乐"), make_user("policy_editor")
    with pytest.raises(ModerationError, match=f"^Tag name: “Dj” is the name of another tag, “DJ” \\{WHY[:-1]}\\)\\.$"):
        tag_update(tag=music, user=editor, name="Dj")
    dj = Tag.objects.get(name="DJ")
    assert tag_update(tag=dj, user=editor, name="Dj").name == "Dj"  # its own name in another case: still one tag

    tag_update(tag=dj, user=editor, is_active=False)
    tag_update(tag=music, user=editor, name="ｄｊ")  # free while the other is retired ...
    with pytest.raises(ModerationError, match="^Not made active again: “Dj” is the name of another tag, “ｄｊ”"):
        tag_update(tag=dj, user=editor, is_active=True)  # ... until it comes back

    proposal = TagProposal.objects.create(name="dj", key="dj")
    with pytest.raises(
        ModerationError, match=f"^Tag name: “DJ” is the name of another tag, “ｄｊ” \\{WHY[:-1]}\\)\\.$"
    ):
        tag_proposal_decide(proposal=proposal, user=editor, action="accept", name="DJ")
    assert not Tag.objects.filter(name="DJ").exists()


def test_a_look_alike_pair_from_before_the_rule_is_listed_and_still_editable(make_user) -> None:  # type: ignore[no-untyped-def]
    for name in ("DJ", "dj"):  # written around the rule, as an older database may hold them
        Tag.objects.create(name=name, **_index_fields(name, []))
    shared = selectors.tag_words_shared()
    assert shared["total"] == 1 and shared["words"][0]["holders"] == [("DJ", "name"), ("dj", "name")]
    dj = Tag.objects.get(name="dj")
    assert tag_update(tag=dj, user=make_user("policy_editor"), name="dj", aliases=["deejay"]).aliases == ["deejay"]
    assert tags_import(lines=["dj\tdisc jockey"]).errors == []
