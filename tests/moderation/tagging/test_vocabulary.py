"""Vocabulary import (per-line errors), hierarchy, versioned edits and type-ahead search."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from moderation.errors import ModerationError
from moderation.tagging.models import Tag, TagRevision, VocabularyVersion
from moderation.tagging.selectors import tag_resolve, tag_search, tag_search_ranked
from moderation.tagging.services import tag_update, tags_import, tags_import_hierarchy

pytestmark = pytest.mark.django_db


def test_bad_vocabulary_lines_are_reported_per_line_and_the_rest_imported(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(
        "猫\n\n美食\t吃的, 食物\n猫\n旅\x00游\n".encode()
        + ("长" * 10_000 + "\n").encode()
        + b"\xff\xfe broken\n"
        + b"DJ\n"
    )
    out, err = StringIO(), StringIO()
    call_command("import_tags", str(path), stdout=out, stderr=err)
    errors = err.getvalue().splitlines()
    assert errors == [
        "line 2: blank line",
        "line 5: contains a NUL character",
        "line 6: 10,000 characters; a tag name has at most 100",
        "line 7: not UTF-8 text",
    ]
    assert "line 4: “猫” repeats line 1; kept as one tag" in out.getvalue()
    assert "3 tags created" in out.getvalue()
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["DJ", "猫", "美食"]
    assert Tag.objects.get(name="美食").aliases == ["吃的", "食物"]
    # A second import of the same file changes nothing and is still one readable report.
    call_command("import_tags", str(path), stdout=StringIO(), stderr=StringIO())
    assert Tag.objects.count() == 3


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_tags", str(tmp_path / "nope.txt"), stdout=StringIO(), stderr=StringIO())


def test_hierarchy_import_and_cycles() -> None:
    tags_import(lines=["动物", "猫", "狗"])
    report = tags_import_hierarchy(lines=["猫\t动物", "狗\t动物", "动物\t猫", "鱼\t动物", "bad line", "狗\t狗"])
    assert Tag.objects.get(name="猫").parent.name == "动物"
    assert report.updated == 2
    # The refusal says which way round the loop is ("“猫” is “动物” itself or below it" did not).
    assert report.errors == [
        "line 3: “动物” cannot go under “猫”: “猫” is already below “动物” (that would make a loop).",
        "line 4: not in the vocabulary: 鱼",
        "line 5: expected “child<TAB>parent”",
        "line 6: “狗” cannot be its own parent.",
    ]


def test_an_edit_is_a_new_version_and_old_names_stay_resolvable(make_user) -> None:  # type: ignore[no-untyped-def]
    report = tags_import(lines=["猫咪"])
    assert report.version is not None
    tag = Tag.objects.get(name="猫咪")
    edited = tag_update(tag=tag, user=make_user("policy_editor"), name="猫", aliases=["喵星人"])
    latest = VocabularyVersion.objects.order_by("-number").first()
    assert latest is not None and latest.number == report.version.number + 1
    old = tag_resolve(tag_id=tag.pk, version_number=report.version.number)
    new = tag_resolve(tag_id=tag.pk, version_number=latest.number)
    assert old is not None and old.name == "猫咪"
    assert new is not None and new.name == "猫" and new.aliases == ["喵星人"]
    assert TagRevision.objects.filter(tag=tag).count() == 2
    assert edited.embedding is None  # a renamed tag is embedded again
    with pytest.raises(ModerationError, match="NUL"):
        tag_update(tag=tag, user=make_user("policy_editor"), name="a\x00b")


def test_search_finds_infix_prefix_and_alias_matches_in_order() -> None:
    tags_import(lines=["美食", "美食教程", "街头美食", "美女", "猫\t喵星人", "DJ", "Jazz"])
    assert [t.name for t in tag_search(query="美食")] == ["美食", "美食教程", "街头美食"]
    assert [t.name for t in tag_search(query="美")][:2] == ["美女", "美食"]  # shorter names first
    assert [t.name for t in tag_search(query="喵星")] == ["猫"]
    assert [t.name for t in tag_search(query="dj")] == ["DJ"]
    assert [t.name for t in tag_search(query="AZZ")] == ["Jazz"]
    assert tag_search(query="   ") == []
    assert tag_search(query="不存在的") == []


def test_one_or_two_letters_match_the_start_of_a_name_or_an_alias_only() -> None:
    """Walked (hui20): "a" listed nearly the whole demo vocabulary, 猫 through "cat", 旅行 through "travel", 风景 through
    "landscape": one or two Latin letters now match where a name or an alias starts; three and more, and any query
    holding a CJK character (a word of its own: 游 finds 手游), still match inside names and aliases."""
    tags_import(
        lines=["猫\tcat, kitten", "旅行\ttravel, trip", "风景\tlandscape, view", "Apple", "Jazz", "DJ\tdisc jockey"]
        + ["手游\tmobile game", "游戏\tgame, gaming"]
    )

    def names(query: str) -> list[str]:
        return sorted(t.name for t in tag_search(query=query))

    assert names("a") == ["Apple"]  # not 猫 (cat), 旅行 (travel), 风景 (landscape), Jazz
    assert names("T") == ["旅行"]  # its aliases "travel" and "trip" start with it; "cat" only ends with it
    assert names("k") == ["猫"]  # "kitten", not "disc jockey"
    assert names("az") == [] and names("ca") == ["猫"] and names("ｇａ") == ["游戏"]  # full-width letters are letters
    assert names("azz") == ["Jazz"] and names("ame") == ["手游", "游戏"]  # three letters: inside words, as before
    assert names("游") == ["手游", "游戏"]  # one CJK character: inside names too
    found = tag_search_ranked(query="v")
    assert [t.name for t in found.tags] == ["风景"] and found.total == 1  # the count is of the same rows


def test_search_uses_the_gram_index_in_one_query() -> None:
    tags_import(lines=[f"标签{i}" for i in range(300)] + ["旅游"])
    with CaptureQueriesContext(connection) as ctx:
        assert [t.name for t in tag_search(query="旅游")] == ["旅游"]
    assert len(ctx.captured_queries) == 1
    assert "search_grams" in ctx.captured_queries[0]["sql"]


def _page(client, **params):  # type: ignore[no-untyped-def]
    from django.urls import reverse

    response = client.get(reverse("moderation:tag_vocabulary"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_vocabulary_screen_pages_through_every_tag_and_search_finds_retired_ones(client_as) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=[f"标签{i:03d}" for i in range(120)])
    retired = Tag.objects.get(name="标签007")
    tag_update(tag=retired, user=None, is_active=False)
    client = client_as("policy_editor")

    first, last = _page(client), _page(client, page=3)
    assert (
        "Tags 1–50 of 120" in first
        and "page 1 of 3 (120 tags)" in first
        and "标签000" in first
        and "标签050" not in first
    )
    assert "Tags 101–120 of 120" in last and "标签119" in last and "标签000" not in last
    assert "Tags 101–120" in _page(client, page="99") and "Tags 1–50" in _page(client, page="x")
    # The editor's search includes an inactive tag, so it can be brought back; the reviewers' search does not.
    assert 'value="标签007"' in _page(client, q="标签007")
    assert tag_search(query="标签007") == []
    many = _page(client, q="标签")
    assert "the first 50 shown: refine the search" in many


def test_an_import_from_the_screen_is_queued_then_shows_every_skipped_line(
    client_as, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """The request only records and queues the import (a 20k-line file took ~11 s inside it); the worker's
    task imports it; the screen shows queued, then the counts and every skipped line."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from moderation.tagging.models import TagImport
    from moderation.tagging.tasks import import_vocabulary

    client = client_as("policy_editor")
    url = reverse("moderation:tag_import")
    content = "萌宠\t宠物, 小动物\n\n".encode() + b"\xff\xfe\n" + b"x" * 101 + "\n美食\n".encode()
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = client.post(url, {"kind": "tags", "file": SimpleUploadedFile("tags.txt", content)}, follow=True)
        again = client.post(url, {"kind": "tags", "file": SimpleUploadedFile("tags.txt", content)}, follow=True)
    text = response.content.decode()
    assert response.status_code == 200 and "The import of tags.txt is queued" in text
    assert 'data-import-status="queued"' in text and 'hx-trigger="every 2s"' in text
    assert "already being imported" in again.content.decode()  # a double submit: one import, one message
    job = TagImport.objects.get()
    assert len(sent) == 1 and not Tag.objects.exists() and VocabularyVersion.objects.count() == 0

    assert import_vocabulary(job.pk) == "done"
    assert import_vocabulary(job.pk) == "done"  # a redelivered message imports nothing twice
    assert Tag.objects.get(name="萌宠").aliases == ["宠物", "小动物"] and VocabularyVersion.objects.count() == 1
    job.refresh_from_db()
    assert job.created == 2 and bytes(job.content) == b"" and job.version is not None
    polled = client.get(reverse("moderation:tag_vocabulary") + "?part=imports", HTTP_HX_REQUEST="true")
    text = polled.content.decode()
    assert 'data-import-status="done"' in text and "hx-trigger" not in text  # ended: no more polling
    assert "2 tags created" in text and "3 lines skipped" in text
    assert "Skipped line 2: blank line" in text and "Skipped line 3: not UTF-8 text" in text
    assert "Skipped line 4:" in text and "Skipped line 5" not in text

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"kind": "hierarchy", "lines": "萌宠\t美食\n猫\t美食\n"})
    hierarchy = TagImport.objects.get(kind="hierarchy")
    assert import_vocabulary(hierarchy.pk) == "done"
    text = client.get(reverse("moderation:tag_vocabulary")).content.decode()
    assert "1 parent set" in text and "1 line skipped" in text  # not "1 parents set", "1 lines skipped"
    assert "Skipped line 2: not in the vocabulary: 猫" in text
    assert Tag.objects.get(name="萌宠").parent == Tag.objects.get(name="美食")

    response = client.post(url, {"kind": "tags", "lines": "  \n"}, follow=True)
    assert "Choose a file or type some lines" in response.content.decode()
    assert TagImport.objects.count() == 2
    assert client_as("moderator").post(url, {"kind": "tags", "lines": "x"}).status_code == 403


def test_an_import_whose_worker_was_lost_is_shown_stalled_and_runs_again_from_nothing(
    client_as, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.urls import reverse
    from django.utils import timezone

    from moderation.tagging.models import TagImport
    from moderation.tagging.tasks import import_vocabulary

    client = client_as("policy_editor")
    url = reverse("moderation:tag_import")
    with django_capture_on_commit_callbacks(execute=False):
        client.post(url, {"kind": "tags", "lines": "猫\n狗\n"})
    job = TagImport.objects.get()
    # A worker took it and died mid-import: the import's transaction never committed.
    long_ago = timezone.now() - TagImport.STALLED_AFTER - timedelta(minutes=1)
    TagImport.objects.filter(pk=job.pk).update(status="running", started_at=long_ago, sent_at=long_ago)
    page = client.get(reverse("moderation:tag_vocabulary")).content.decode()
    assert "<strong>stalled</strong>" in page and 'hx-trigger="every 30s"' in page

    with django_capture_on_commit_callbacks(execute=False) as sent:
        resent = client.post(url, {"kind": "tags", "lines": "猫\n狗\n"}, follow=True)
    assert "already being imported" in resent.content.decode() and len(sent) == 1  # sent again, same row
    assert import_vocabulary(job.pk) == "done"  # the redelivery runs it from nothing
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["狗", "猫"] and TagImport.objects.count() == 1


def test_the_demo_vocabulary_is_imported_once_into_an_empty_vocabulary_and_names_the_demo_videos() -> None:
    from moderation.media.demo import DEMO_SCRIPTS
    from moderation.tagging.text import normalise

    out = StringIO()
    call_command("import_tags", demo=True, stdout=out)
    assert "30 tags created" in out.getvalue() and "0 lines skipped" in out.getvalue()
    again = StringIO()
    call_command("import_tags", demo=True, stdout=again)
    assert "not empty" in again.getvalue() and Tag.objects.count() == 30
    # Every demo clip's title or speech names at least one demo tag (by an alias), so candidates appear.
    names = [normalise(n) for t in Tag.objects.all() for n in (t.name, *t.aliases)]
    for clip in DEMO_SCRIPTS:
        text = normalise(f"{clip.title} {clip.speech}")
        assert any(n in text for n in names), clip.title


def test_a_tag_saved_from_a_page_older_than_another_editors_change_does_not_revert_it(client_as) -> None:  # type: ignore[no-untyped-def]
    """Each row's form sends every field: an editor who opened the screen before a colleague renamed a tag
    and then saved an alias on that row renamed it back, silently."""
    import re

    from django.urls import reverse

    tags_import(lines=["猫咪\tcat"])
    tag = Tag.objects.get()
    alice, bob = client_as("policy_editor"), client_as("policy_editor")
    page = bob.get(reverse("moderation:tag_vocabulary")).content.decode()  # Bob's screen, before Alice's edit
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page)
    assert seen is not None
    url = reverse("moderation:tag_edit", args=[tag.pk])
    alice_seen = seen.group(1)
    alice.post(url, {"name": "猫", "aliases": "cat", "is_active": "on", "seen": alice_seen})
    assert Tag.objects.get().name == "猫"

    refused = bob.post(
        url, {"name": "猫咪", "aliases": "cat, kitty", "is_active": "on", "seen": seen.group(1)}, follow=True
    )

    text = refused.content.decode()
    assert "was not saved: it was changed by someone else" in text and "now “猫”" in text
    tag.refresh_from_db()
    assert tag.name == "猫" and tag.aliases == ["cat"]  # Alice's rename stands
    fresh = re.search(r'name="seen" value="([0-9a-f]+)"', text)
    assert fresh is not None and fresh.group(1) == tag.edit_token  # the reloaded row may be saved again
    bob.post(url, {"name": "猫", "aliases": "cat, kitty", "is_active": "on", "seen": fresh.group(1)})
    assert Tag.objects.get().aliases == ["cat", "kitty"]


def test_policy_editors_create_and_change_tag_sets_on_the_vocabulary_screen(client_as) -> None:  # type: ignore[no-untyped-def]
    """Tag sets (a business line's tags and thresholds) had no screen: only code could make or change one."""
    from django.urls import reverse

    from moderation.tagging.models import TagSet
    from moderation.tagging.services import tag_set_default

    tags_import(lines=["萌宠", "美食", "旅行"])
    default = tag_set_default()
    editor = client_as("policy_editor")
    url = reverse("moderation:tag_set_save")
    new = {"create": "1", "slug": "ads-safe", "name": "Ads safe", "show_threshold": "0.1"}
    new |= {"preselect_threshold": "0.95", "max_suggestions": "8", "tags": "萌宠，美食", "is_default": "on"}

    page = editor.post(url, new, follow=True).content.decode()

    assert "Saved tag set “Ads safe” (2 tags)" in page and 'data-tag-set="ads-safe"' in page
    ads = TagSet.objects.get(slug="ads-safe")
    assert sorted(t.name for t in ads.tags.all()) == ["美食", "萌宠"] and ads.is_default
    default.refresh_from_db()
    assert not default.is_default  # one default
    refused = [
        ({**new, "slug": "ads-safe"}, "already exists"),
        ({**new, "slug": "Ads Safe!"}, "lower-case letters"),
        ({**new, "create": "", "show_threshold": "0.99"}, "a pre-selected suggestion would be hidden"),
        ({**new, "create": "", "preselect_threshold": "nan"}, "is not a number"),
        ({**new, "create": "", "tags": "萌宠, 不存在"}, "Not in the vocabulary: “不存在”"),
        ({**new, "create": "", "is_default": ""}, "must be made the default before"),
    ]
    for form, message in refused:
        text = editor.post(url, form, follow=True).content.decode()
        assert "was not saved" in text and message in text, message
    typo = editor.post(url, {**new, "slug": "kids", "name": "Kids", "tags": "萌宠, 不存在"})
    kept = typo.content.decode()  # a refused new set keeps what was typed, its form unfolded
    assert typo.status_code == 400 and 'value="Kids"' in kept and ">萌宠, 不存在</textarea>" in kept
    # ... and says why inside that form: at the page's top it sat a screen's height above the boxes to fix.
    new_form = kept.split('id="new-tag-set"')[1].split("</form>")[0]
    assert 'role="alert"' in new_form and "Not in the vocabulary: “不存在”" in new_form
    assert 'aria-invalid="true" aria-describedby="new-tag-set-tags-error" autofocus>萌宠, 不存在</textarea>' in new_form
    edit = editor.post(url, {**new, "create": "", "name": "Ads (strict)", "show_threshold": "0.97"})
    assert edit.status_code == 400  # the page again, not a redirect to the stored values
    kept = edit.content.decode()  # a refused edit keeps what was typed, the reason beside that set's form
    start = kept.index('data-tag-set="ads-safe"')
    ads_form = kept[start : kept.index("</form>", start)]
    assert 'role="alert"' in ads_form and "a pre-selected suggestion would be hidden" in ads_form
    assert 'value="Ads (strict)"' in ads_form and 'value="0.97"' in ads_form and ">萌宠，美食</textarea>" in ads_form
    ads.refresh_from_db()
    assert ads.name == "Ads safe" and ads.show_threshold == 0.1 and ads.tags.count() == 2
    assert TagSet.objects.count() == 2
    assert client_as("moderator").post(url, new).status_code == 403


def test_an_alias_that_is_another_tags_name_is_refused_on_its_line(tmp_path: Path) -> None:
    tags_import(lines=["湖", "DJ"])
    path = tmp_path / "vocab.txt"
    # 湖 is a tag already; Ｄｊ is DJ once normalised (NFKC, lower case); 海 is named on a later line.
    path.write_text("汤\t湖, 汤水\n音乐\tＤｊ\n河\t海\n海\n", encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_tags", str(path), stdout=out, stderr=err)
    assert err.getvalue().splitlines() == [
        "line 1: alias “湖” is the name of another tag, “湖”; not added",
        "line 2: alias “Ｄｊ” is the name of another tag, “DJ”; not added",
        "line 3: alias “海” is the name of another tag, “海”; not added",
    ]
    assert Tag.objects.get(name="汤").aliases == ["汤水"]
    assert Tag.objects.get(name="音乐").aliases == []


def test_an_edit_refuses_an_alias_that_is_another_active_tags_name(make_user) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["汤", "湖", "旧"])
    soup, old = Tag.objects.get(name="汤"), Tag.objects.get(name="旧")
    editor = make_user("policy_editor")
    with pytest.raises(ModerationError, match="Aliases: “湖” is the name of another tag, “湖”."):
        tag_update(tag=soup, user=editor, aliases=["汤水", "湖"])
    tag_update(tag=old, user=editor, is_active=False)  # a retired tag's name is free
    assert tag_update(tag=soup, user=editor, aliases=["旧", "汤水"]).aliases == ["旧", "汤水"]
    # Renamed, the tag may keep its old name as an alias.
    assert tag_update(tag=soup, user=editor, name="汤品", aliases=["汤"]).aliases == ["汤"]


def test_a_tag_may_not_be_named_as_another_tags_alias_one_rule_for_edits_and_imports(make_user) -> None:  # type: ignore[no-untyped-def]
    """An alias equal to another tag's name was refused, a rename (or a new tag) to another tag's alias was
    not: the word then stood for two tags. Both directions are now one rule (``_word_clash``)."""
    tags_import(lines=["猫\t喵星人, Kitty", "狗"])
    dog = Tag.objects.get(name="狗")
    editor = make_user("policy_editor")
    with pytest.raises(ModerationError, match="Tag name: “喵星人” is an alias of another tag, “猫”."):
        tag_update(tag=dog, user=editor, name="喵星人")
    with pytest.raises(ModerationError, match="Tag name: “KITTY” is an alias of another tag, “猫”."):
        tag_update(tag=dog, user=editor, name="KITTY")  # normalised, as a video's text is matched
    dog.refresh_from_db()
    assert dog.name == "狗"
    report = tags_import(lines=["喵星人", "鸟"])
    assert report.errors == ["line 1: “喵星人” is an alias of another tag, “猫”; not added"]
    assert not Tag.objects.filter(name="喵星人").exists() and Tag.objects.filter(name="鸟").exists()
    cat = Tag.objects.get(name="猫")
    tag_update(tag=cat, user=editor, is_active=False)  # a retired tag's words are free
    assert tag_update(tag=dog, user=editor, name="喵星人").name == "喵星人"
    with pytest.raises(ModerationError, match="Not made active again: “喵星人” is the name of another tag, “喵星人”."):
        tag_update(tag=cat, user=editor, is_active=True)  # ... until it comes back


# --- one word, one tag: an alias may not be another active tag's alias either ------------------------


def test_an_imported_alias_that_another_tag_holds_as_an_alias_is_refused_on_its_line(tmp_path: Path) -> None:
    """Two tags could share an alias (an import, an edit, a curation merge): the word in a video's text then
    stood for both. The one word rule now refuses it, normalised as names are, on the line that brings it."""
    tags_import(lines=["猫\t喵星人, Kitty"])
    path = tmp_path / "vocab.txt"
    # ＫＩＴＴＹ is Kitty once normalised; 汪星人 is taken by line 2's tag before line 3 asks for it; 猫 may
    # repeat its own aliases.
    path.write_text("狗\tＫＩＴＴＹ, 狗子\n柴犬\t汪星人\n狼\t汪星人, 灰狼\n猫\t喵星人, 猫咪\n", encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_tags", str(path), stdout=out, stderr=err)
    assert err.getvalue().splitlines() == [
        "line 1: alias “ＫＩＴＴＹ” is an alias of another tag, “猫”; not added",
        "line 3: alias “汪星人” is an alias of another tag, “柴犬”; not added",
    ]
    aliases = dict(Tag.objects.values_list("name", "aliases"))
    assert aliases == {"猫": ["喵星人", "Kitty", "猫咪"], "狗": ["狗子"], "柴犬": ["汪星人"], "狼": ["灰狼"]}


def test_an_edit_refuses_an_alias_that_another_active_tag_holds_as_an_alias(make_user) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["猫\t喵星人, Kitty", "狗", "旧\t老物件"])
    cat, dog, old = (Tag.objects.get(name=n) for n in ("猫", "狗", "旧"))
    editor = make_user("policy_editor")
    with pytest.raises(ModerationError, match="Aliases: “ｋｉｔｔｙ” is an alias of another tag, “猫”."):
        tag_update(tag=dog, user=editor, aliases=["狗子", "ｋｉｔｔｙ"])
    dog.refresh_from_db()
    assert dog.aliases == []
    # The tag's own aliases, kept while others are added, are no clash; a retired tag's alias is free.
    assert tag_update(tag=cat, user=editor, aliases=["喵星人", "Kitty", "猫咪"]).aliases == ["喵星人", "Kitty", "猫咪"]
    tag_update(tag=old, user=editor, is_active=False)
    assert tag_update(tag=dog, user=editor, aliases=["老物件"]).aliases == ["老物件"]
    # ... until that tag comes back: its alias is now another's, so it stays retired.
    with pytest.raises(ModerationError, match="Not made active again: “老物件” is an alias of another tag, “狗”."):
        tag_update(tag=old, user=editor, is_active=True)
    old.refresh_from_db()
    assert not old.is_active


def test_words_two_tags_already_share_are_listed_and_do_not_block_other_edits(make_user, client_as) -> None:  # type: ignore[no-untyped-def]
    """Data from before the rule: the duplicates are listed for the editors (the curation screen); editing
    either tag otherwise still works, and neither may hand the word to a third tag."""
    from moderation.tagging.selectors import tag_words_shared
    from moderation.tagging.services import _index_fields

    tags_import(lines=["猫\t喵星人", "狗\t汪星人", "鸟", "DJ"])
    for name, aliases in (("狗", ["汪星人", "喵星人"]), ("鸟", ["喵星人"]), ("猫", ["喵星人", "dj"])):
        Tag.objects.filter(name=name).update(aliases=aliases, **_index_fields(name, aliases))  # as written before
    assert tag_words_shared() == {
        "words": [
            {"word": "dj", "holders": [("DJ", "name"), ("猫", "alias")]},
            {"word": "喵星人", "holders": [("狗", "alias"), ("猫", "alias"), ("鸟", "alias")]},
        ],
        "total": 2,
    }
    assert tag_words_shared(limit=1)["total"] == 2
    screen = client_as("policy_editor").get("/tags/curation/").content.decode()
    assert "2 words are held by more than one tag" in screen
    assert '<a href="/tags/vocabulary/?q=%E5%96%B5%E6%98%9F%E4%BA%BA" lang="zh">“喵星人”</a>' in screen
    # Importing a holder's own line again changes nothing and is no error; a new holder is refused.
    again = tags_import(lines=["狗\t汪星人, 喵星人", "鱼\t喵星人"])
    assert again.errors == ["line 2: alias “喵星人” is an alias of another tag, “狗”; not added"]
    assert (again.unchanged, again.created) == (1, 1) and Tag.objects.get(name="鱼").aliases == []
    editor = make_user("policy_editor")
    dog = tag_update(tag=Tag.objects.get(name="狗"), user=editor, aliases=["汪星人", "喵星人", "狗子"])
    assert dog.aliases == ["汪星人", "喵星人", "狗子"]
    fish = Tag.objects.get(name="鱼")
    with pytest.raises(ModerationError, match="“喵星人” is an alias of another tag"):
        tag_update(tag=fish, user=editor, aliases=["喵星人"])
    # Removing the word from all tags but one clears the list.
    for name in ("狗", "鸟"):
        tag = Tag.objects.get(name=name)
        tag_update(tag=tag, user=editor, aliases=[a for a in tag.aliases if a != "喵星人"])
    tag_update(tag=Tag.objects.get(name="猫"), user=editor, is_active=False)
    assert tag_words_shared() == {"words": [], "total": 0}
    assert "held by more than one tag" not in client_as("policy_editor").get("/tags/curation/").content.decode()


def test_a_tags_own_name_is_never_one_of_its_aliases(make_user) -> None:  # type: ignore[no-untyped-def]
    """ "猫<TAB>猫" (a hierarchy file sent as tags) gave 猫 the alias 猫 and counted as "1 given new aliases";
    the vocabulary then listed the tag's name among its aliases. It is left out, and the import says so."""
    tags_import(lines=["猫\tcat"])

    report = tags_import(lines=["猫\t猫, kitten"])

    cat = Tag.objects.get(name="猫")
    assert cat.aliases == ["cat", "kitten"]
    assert "line 1: “猫” is the tag's own name, not an alias" in report.notes
    report = tags_import(lines=["猫\t猫"])
    assert (report.updated, report.unchanged, report.errors) == (0, 1, [])
    cat.refresh_from_db()
    assert cat.aliases == ["cat", "kitten"]

    edited = tag_update(tag=cat, user=make_user("policy_editor"), aliases=["kitten", "猫", "cat"])
    assert edited.aliases == ["kitten", "cat"]


def test_a_line_with_extra_tabs_is_reported_as_too_many_columns_on_its_line() -> None:
    """ "猫<TAB>cat<TAB>kitty" (a spreadsheet with one column too many) was reported as "alias “cat	kitty”:
    contains a control character or a lone surrogate": the tab read as a stray byte, not as a column."""
    report = tags_import(lines=["美食\t吃的", "猫\tcat\tkitty", "狗\tdog\t\t汪星人\t", "鱼\t\tfish\t"])

    assert report.errors == [
        "line 2: 3 columns (an extra tab); a line is “name” or “name<TAB>alias, alias”, aliases separated by commas",
        "line 3: 3 columns (an extra tab); a line is “name” or “name<TAB>alias, alias”, aliases separated by commas",
    ]
    # Empty columns (a trailing tab, two tabs in a row) say nothing more: as before, the line is used.
    assert sorted(Tag.objects.values_list("name", "aliases")) == [("美食", ["吃的"]), ("鱼", ["fish"])]


def test_aliases_differing_only_in_case_or_width_are_one_alias_and_the_import_and_edit_say_so(client_as) -> None:  # type: ignore[no-untyped-def]
    """ "Kitty" and "kitty" were both kept on one tag, though a video's text is matched normalised (NFKC, lower
    case): one word listed twice. The first spelling is kept; the import notes the line, the edit says so."""
    from django.urls import reverse

    report = tags_import(lines=["猫\tKitty, kitty, 喵", "猫\tＫＩＴＴＹ, cat"])

    cat = Tag.objects.get(name="猫")
    assert cat.aliases == ["Kitty", "喵", "cat"]
    assert report.notes == [
        "line 1: “kitty” is the alias “Kitty” again (aliases match ignoring case and width); kept once",
        "line 2: “猫” repeats line 1; kept as one tag",
        "line 2: “ＫＩＴＴＹ” is the alias “Kitty” again (aliases match ignoring case and width); kept once",
    ]
    again = tags_import(lines=["猫\tKITTY"])  # against the aliases the tag has
    assert again.unchanged == 1 and again.notes == [
        "line 1: “KITTY” is the alias “Kitty” again (aliases match ignoring case and width); kept once"
    ]

    editor = client_as("policy_editor")
    page = editor.post(
        reverse("moderation:tag_edit", args=[cat.pk]),
        {"name": "猫", "aliases": "Kitty, 喵, KITTY, cat, Cat", "is_active": "on", "seen": cat.edit_token},
        follow=True,
    ).content.decode()
    cat.refresh_from_db()
    assert cat.aliases == ["Kitty", "喵", "cat"]
    assert "Saved “猫”. “KITTY” is the alias “Kitty” again, “Cat” the alias “cat” again" in page
    assert "(aliases match ignoring case and width): kept once." in page


def test_an_import_from_the_screen_shows_its_notes_as_well_as_its_skipped_lines(
    client_as, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """Notes ("line 1: “猫” is the tag's own name, not an alias") reached only `manage.py import_tags`: the
    screen said "1 tag created" and nothing about the line that was used differently from how it was written."""
    from django.urls import reverse

    from moderation.tagging.models import TagImport
    from moderation.tagging.tasks import import_vocabulary

    client = client_as("policy_editor")
    lines = "猫\t猫, cat\n狗\tdog\tpuppy\n猫\tCat\n"
    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("moderation:tag_import"), {"kind": "tags", "lines": lines})
    job = TagImport.objects.get()
    assert import_vocabulary(job.pk) == "done"

    text = client.get(reverse("moderation:tag_vocabulary") + "?part=imports", HTTP_HX_REQUEST="true").content.decode()
    assert "1 line skipped" in text and "Skipped line 2: 3 columns (an extra tab)" in text
    assert "3 notes" in text
    for note in (
        "line 1: “猫” is the tag's own name, not an alias",
        "line 3: “猫” repeats line 1; kept as one tag",
        "line 3: “Cat” is the alias “cat” again (aliases match ignoring case and width); kept once",
    ):
        assert f"<li>{note}</li>".replace("'", "&#x27;") in text, note


def test_a_tags_aliases_that_differ_only_in_case_from_before_are_listed_until_an_edit_keeps_one(
    make_user, client_as
) -> None:  # type: ignore[no-untyped-def]
    """Tags written before imports and edits kept "Kitty" and "kitty" once still hold both: the curation screen
    lists them beside the words two tags share, with the spelling an edit keeps; saving the tag cleans it."""
    from moderation.tagging.selectors import tag_words_repeated
    from moderation.tagging.services import _index_fields

    tags_import(lines=["猫", "DJ", "狗\t汪星人"])
    for name, aliases in (("猫", ["Kitty", "喵星人", "KITTY", "ｋｉｔｔｙ"]), ("DJ", ["dj"])):
        Tag.objects.filter(name=name).update(aliases=aliases, **_index_fields(name, aliases))  # as written before
    assert tag_words_repeated() == {
        "words": [
            {"tag": "DJ", "word": "dj", "spellings": [("DJ", "name"), ("dj", "alias")]},
            {
                "tag": "猫",
                "word": "kitty",
                "spellings": [("Kitty", "alias"), ("KITTY", "alias"), ("ｋｉｔｔｙ", "alias")],
            },
        ],
        "total": 2,
    }
    assert tag_words_repeated(limit=1)["total"] == 2
    screen = client_as("policy_editor").get("/tags/curation/").content.decode()
    assert "2 words are held twice by one tag" in screen
    listed = screen.split('id="repeated-words"', 1)[1].split("</details>", 1)[0]
    assert '<a href="/tags/vocabulary/?q=%E7%8C%AB" lang="zh">猫</a>' in listed
    assert '“Kitty”</span> <small class="hint">(alias, kept)</small>' in listed
    assert '“KITTY”</span> <small class="hint">(alias)</small>' in listed

    editor = make_user("policy_editor")
    cat = Tag.objects.get(name="猫")
    assert tag_update(tag=cat, user=editor, aliases=cat.aliases).aliases == ["Kitty", "喵星人"]
    dj = Tag.objects.get(name="DJ")
    tag_update(tag=dj, user=editor, aliases=dj.aliases)
    assert tag_words_repeated() == {"words": [], "total": 0}
    assert 'id="repeated-words"' not in client_as("policy_editor").get("/tags/curation/").content.decode()


def test_a_refused_vocabulary_row_keeps_what_was_typed_in_it(client_as) -> None:  # type: ignore[no-untyped-def]
    """A row refused (here: a parent that is no tag) went back to the list with the stored row: the aliases
    typed beside the mistyped parent were gone, and the reason was at the page's top, far from the row."""
    import re

    from django.urls import reverse

    tags_import(lines=["促销\tsale", "手机"])
    promo = Tag.objects.get(name="促销")
    editor = client_as("policy_editor")
    url = reverse("moderation:tag_edit", args=[promo.pk])
    typed = {"name": "促销", "aliases": "sale, discount, 便宜", "parent": "商业", "is_active": "on"}

    refused = editor.post(url, {**typed, "seen": promo.edit_token})

    assert refused.status_code == 400
    page = refused.content.decode()
    row = re.search(rf'<tr class="refused" id="tag-row-{promo.pk}">(.*?)</tr>\s*<tr>(.*?)</tr>', page, re.S)
    assert row is not None
    assert 'value="sale, discount, 便宜"' in row.group(1) and 'value="商业"' in row.group(1)
    assert "“促销” was not saved: “商业” is not a tag." in row.group(2)  # beside the row, not at the top
    promo.refresh_from_db()
    assert promo.aliases == ["sale"] and promo.parent is None  # nothing saved
    # Drawn at the row's POST address: the search still goes to the list, not to that address (a 405).
    assert '<form method="get" action="/tags/vocabulary/">' in page
    # The same row, sent again with the parent fixed, saves what was typed.
    fixed = editor.post(url, {**typed, "parent": "手机", "seen": promo.edit_token})
    assert fixed.status_code == 302
    promo.refresh_from_db()
    assert promo.aliases == ["sale", "discount", "便宜"] and promo.parent == Tag.objects.get(name="手机")


def test_a_refused_vocabulary_row_marks_and_focuses_the_box_at_fault(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walk hwalk19: a row refused for its parent (no such tag, its own parent, a loop) or its aliases marked the
    name box invalid and put the cursor there, so the editor typed over the tag's name instead of the parent."""
    import re

    from django.urls import reverse

    tags_import(lines=["宠物\tpet", "狗\tdog", "猫\tcat"])
    tags_import_hierarchy(lines=["狗\t宠物"])
    editor = client_as("policy_editor")

    def refused_row(tag_name: str, **typed: str) -> str:
        tag = Tag.objects.get(name=tag_name)
        sent = {"name": tag_name, "aliases": ", ".join(tag.aliases), "is_active": "on", "seen": tag.edit_token, **typed}
        page = editor.post(reverse("moderation:tag_edit", args=[tag.pk]), sent)
        assert page.status_code == 400
        row = re.search(rf'<tr class="refused" id="tag-row-{tag.pk}">(.*?)</tr>', page.content.decode(), re.S)
        assert row is not None
        return row.group(1)

    def marked(row: str) -> list[str]:
        return re.findall(r'<input name="(\w+)"[^>]*autofocus aria-invalid="true"', row)

    assert marked(refused_row("猫", parent="无此标签")) == ["parent"]
    assert marked(refused_row("猫", parent="猫")) == ["parent"]
    assert marked(refused_row("宠物", parent="狗")) == ["parent"]  # a loop
    assert marked(refused_row("猫", aliases="dog")) == ["aliases"]  # 狗's alias
    assert marked(refused_row("猫", name="狗")) == ["name"]


def test_a_row_saved_on_a_later_page_of_the_vocabulary_goes_back_to_that_page(client_as) -> None:  # type: ignore[no-untyped-def]
    """Saving a row on page 2 went back to page 1, where the row just saved is not."""
    from django.urls import reverse

    from moderation.tagging.selectors import VOCABULARY_PAGE

    tags_import(lines=[f"标签{i:03d}" for i in range(VOCABULARY_PAGE + 5)])
    editor = client_as("policy_editor")
    second = editor.get(reverse("moderation:tag_vocabulary"), {"page": 2}).content.decode()
    last = Tag.objects.get(name=f"标签{VOCABULARY_PAGE + 4:03d}")
    assert f'id="tag-{last.pk}"' in second and 'name="page" value="2"' in second

    saved = editor.post(
        reverse("moderation:tag_edit", args=[last.pk]),
        {"name": last.name, "aliases": "x", "is_active": "on", "q": "", "page": "2", "seen": last.edit_token},
    )

    assert saved["Location"] == f"/tags/vocabulary/?page=2#tag-row-{last.pk}"
    # Refused there, the page drawn at the row's POST address pages to the list's address.
    refused = editor.post(
        reverse("moderation:tag_edit", args=[last.pk]),
        {"name": last.name, "parent": "无此标签", "is_active": "on", "page": "2", "seen": last.edit_token},
    ).content.decode()
    assert 'href="/tags/vocabulary/?page=1"' in refused and f'id="tag-row-{last.pk}"' in refused


def test_a_tag_set_form_says_every_problem_at_once_beside_its_field(client_as) -> None:  # type: ignore[no-untyped-def]
    """The form refused one problem at a time: fix the name, send, learn the threshold was wrong, fix it, send,
    learn a tag was unknown. Now every field's problem comes back together, each beside its field, typed values kept."""
    from django.urls import reverse

    from moderation.tagging.models import TagSet
    from moderation.tagging.services import tag_set_default

    tags_import(lines=["萌宠"])
    default = tag_set_default()
    editor = client_as("policy_editor")
    url = reverse("moderation:tag_set_save")
    typed = {"create": "1", "slug": "Ads Safe!", "name": "", "description": "x" * 501, "show_threshold": "abc"}
    typed |= {"preselect_threshold": "1.5", "max_suggestions": "2.7", "tags": "萌宠, 不存在"}

    response = editor.post(url, typed)

    assert response.status_code == 400
    form = response.content.decode().split('id="new-tag-set"')[1].split("</form>")[0]
    assert "was not saved: 7 problems, each said beside its field." in form
    beside = {
        "slug": "lower-case letters, digits and &#x27;-&#x27;",
        "name": "needs a name of 1 to 100 characters",
        "description": "The description is 501 characters long",
        "show_threshold": "Show threshold: “abc” is not a number.",
        "preselect_threshold": "Pre-select threshold: 1.5 is not a ranker score",
        "max_suggestions": "Suggestions shown: “2.7” is not a whole number.",
        "tags": "Not in the vocabulary: “不存在”",
    }
    for field, message in beside.items():
        said = form.split(f'id="new-tag-set-{field}-error">')[1].split("</p>")[0]
        assert message in said, field
        assert f'aria-invalid="true" aria-describedby="new-tag-set-{field}-error"' in form, field
    assert form.count("autofocus") == 1 and 'aria-describedby="new-tag-set-slug-error" autofocus' in form
    assert 'value="Ads Safe!"' in form and 'value="abc"' in form and 'value="2.7"' in form
    assert ">萌宠, 不存在</textarea>" in form
    assert not TagSet.objects.filter(name="").exists() and TagSet.objects.count() == 1

    # An edit too: a show threshold above the pre-select one and an unknown tag, both at once, in its form.
    edit = {"slug": default.slug, "name": default.name, "show_threshold": "0.95", "preselect_threshold": "0.9"}
    edit |= {"max_suggestions": "12", "tags": "没有", "is_default": "on"}
    page = editor.post(url, edit).content.decode()
    start = page.index(f'data-tag-set="{default.slug}"')
    own = page[start : page.index("</form>", start)]
    assert "2 problems, each said beside its field." in own
    assert (
        "a pre-selected suggestion would be hidden"
        in own.split(f'id="tag-set-{default.slug}-show_threshold-error">')[1]
    )
    assert "Not in the vocabulary: “没有”" in own.split(f'id="tag-set-{default.slug}-tags-error">')[1]
    default.refresh_from_db()
    assert default.show_threshold == 0.05


def test_a_tag_set_threshold_typed_with_a_decimal_comma_is_read_as_that_number(client_as) -> None:  # type: ignore[no-untyped-def]
    """A decimal comma ("0,9", as many keyboards and locales write it) was refused as "not a number"; a comma that
    could be a digit group ("1,000.5") or is one of several ("0,1,2") is still refused, never guessed."""
    from django.urls import reverse

    from moderation.tagging.models import TagSet

    tags_import(lines=["萌宠"])
    editor = client_as("policy_editor")
    url = reverse("moderation:tag_set_save")
    new = {"create": "1", "slug": "comma", "name": "Comma", "show_threshold": " 0,15 ", "preselect_threshold": "0,9"}
    new |= {"max_suggestions": "8", "tags": "萌宠"}

    saved = editor.post(url, new, follow=True).content.decode()

    assert "Saved tag set “Comma”" in saved
    comma = TagSet.objects.get(slug="comma")
    assert (comma.show_threshold, comma.preselect_threshold) == (0.15, 0.9)
    for typed in ("1,000.5", "0,1,2"):
        refused = editor.post(url, {**new, "create": "", "preselect_threshold": typed})
        assert refused.status_code == 400 and f"Pre-select threshold: “{typed}” is not a number." in (
            refused.content.decode()
        )
    comma.refresh_from_db()
    assert comma.preselect_threshold == 0.9
