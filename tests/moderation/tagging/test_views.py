"""Tag screens over HTTP: search fragment, the panel on the review screen, roles."""

from __future__ import annotations

import re

import pytest

from moderation.tagging.services import tags_import
from tests.factories import DecisionFactory, ReviewTaskFactory, TagTaskFactory

pytestmark = pytest.mark.django_db


def test_search_fragment_lists_matches_and_reports_server_time(client_as) -> None:  # type: ignore[no-untyped-def]
    tags_import(lines=["美食", "街头美食", "美女", "<b>x</b>"])
    client = client_as("moderator")
    response = client.get("/tags/search/", {"q": "美食"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("美食") < body.index("街头美食") and "美女" not in body
    assert response["Server-Timing"].startswith("search;dur=")
    escaped = client.get("/tags/search/", {"q": "<b>"}, HTTP_HX_REQUEST="true").content.decode()
    assert "&lt;b&gt;x&lt;/b&gt;" in escaped and "<b>x</b>" not in escaped
    assert "No tag matches" in client.get("/tags/search/", {"q": "无"}, HTTP_HX_REQUEST="true").content.decode()


def test_a_search_that_finds_no_tag_says_where_tags_come_from(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walk hwalk22: a tag reviewer typing a tag the vocabulary lacks ("scam") read only "No tag matches “scam”.", a
    dead end. It says that tags come from the vocabulary and who adds one: a policy editor gets the link to add it."""
    tags_import(lines=["美食"])
    said = client_as("moderator").get("/tags/search/", {"q": "scam"}, HTTP_HX_REQUEST="true").content.decode()
    assert (
        "No tag matches “scam”: tags come from the vocabulary, which a policy editor keeps: ask one to add it." in said
    )
    editor = client_as("policy_editor").get("/tags/search/", {"q": "scam"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'which you keep: <a href="/tags/vocabulary/#vocabulary-import">add it there</a>' in editor


def test_review_screen_draws_the_tags_panel_and_labelers_are_refused(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    client = client_as("moderator")
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__file="")
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next

    user = User.objects.get(pk=client.session["_auth_user_id"])
    claimed = review_claim_next(user=user, queue=task.queue)
    assert claimed is not None
    screen = client.get(f"/review/{claimed.pk}/").content.decode()
    panel_url = f"/tags/video/{task.decision.video_id}/panel/"
    # Drawn with the screen, not loaded after it (a placeholder on every item); its own address still answers.
    assert f'hx-get="{panel_url}"' not in screen
    section = screen[screen.index('<section class="panel" id="tags">') :]
    assert section.index('<div id="tags-panel"') < 80 and "No tag candidates yet" in section
    panel = client.get(panel_url)
    assert panel.status_code == 200 and "No tag candidates yet" in panel.content.decode()
    # Its "Add a tag" search sends the video, so the video's own suggestions rank first.
    assert f'hx-vals=\'{{"video": "{task.decision.video_id}"}}\' hx-params="q,set,video"' in panel.content.decode()
    assert client_as("labeler").get(panel_url).status_code == 403
    assert client_as("moderator").post("/tags/ranker/train/").status_code == 403  # admins retrain


def test_api_video_detail_has_tags_and_the_list_filters_by_tag(client_as, make_user, policy_version) -> None:  # type: ignore[no-untyped-def]
    from moderation.tagging.models import Tag, VideoTag
    from tests.factories import DecisionFactory

    tags_import(lines=["美食", "旅游"])
    food, travel = Tag.objects.get(name="美食"), Tag.objects.get(name="旅游")
    # Decided videos (tags are given to routed ones; one not decided yet is its uploader's only).
    a, b = (DecisionFactory(video__file="", policy_version=policy_version).video for _ in range(2))
    VideoTag.objects.create(video=a, tag=food, added_by=make_user("moderator"))
    VideoTag.objects.create(video=b, tag=travel)
    client = client_as("moderator")
    detail = client.get(f"/api/videos/{a.pk}/").json()
    assert [t["name"] for t in detail["tags"]] == ["美食"] and detail["tag_suggestions"] == []
    listed = client.get("/api/videos/", {"tag": "旅游"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["id"] for r in rows] == [b.pk]
    schema = client.get("/api/schema/").content.decode()
    assert "tag_suggestions" in schema and "name: tag" in schema


def test_tag_screen_says_a_missing_video_file(client_as, policy_version, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from django.urls import reverse

    from moderation.review.models import AuditEvent

    settings.MEDIA_ROOT = tmp_path
    task = TagTaskFactory(decision=DecisionFactory(policy_version=policy_version))  # its video has a file
    video = task.decision.video
    client = client_as("moderator")
    url = reverse("moderation:tag_task", args=[task.pk])
    html = client.get(url).content.decode()
    assert f'src="{video.file.url}"' in html and 'id="media-missing"' not in html

    (Path(settings.MEDIA_ROOT) / video.file.name).unlink()
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Missing from media storage: the video file" in html and 'data-missing="video"' in html
    assert "<video" not in html
    video.refresh_from_db()
    assert video.missing_media == [video.file.name]
    assert AuditEvent.objects.filter(object_type="video", object_id=str(video.pk), action="media.missing").count() == 1


def test_digit_hints_on_chips_only_where_digits_toggle_them(client_as, policy_version, vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    """The tag screen toggles chips with 1-9; on the review screen the digits choose the severity, so the
    panel there must not label its chips with digit keys."""
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next
    from moderation.tagging.services import tag_candidates_generate

    task = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="周末在家做火锅 美食教程")
    video_id = task.decision.video_id
    tag_candidates_generate(video_id=video_id, encode=encode)
    client = client_as("moderator")
    panel = client.get(f"/tags/video/{video_id}/panel/").content.decode()
    assert "火锅" in panel and "<kbd>1</kbd>" not in panel
    user = User.objects.get(pk=client.session["_auth_user_id"])
    assert review_claim_next(user=user, queue=task.queue) == task
    screen = client.get(f"/tags/task/{task.pk}/").content.decode()
    assert "<kbd>1</kbd>" in screen


def test_a_refused_vocabulary_edit_names_the_row_it_was_for(client_as) -> None:  # type: ignore[no-untyped-def]
    from moderation.tagging.models import Tag

    tags_import(lines=["汤", "美食"])
    soup = Tag.objects.get(name="汤")
    response = client_as("policy_editor").post(
        f"/tags/vocabulary/{soup.pk}/",
        {"name": "汤", "aliases": "", "parent": "不存在", "is_active": "on"},
        follow=True,
    )
    assert "“汤” was not saved: “不存在” is not a tag." in response.content.decode()
    soup.refresh_from_db()
    assert soup.parent_id is None


@pytest.mark.parametrize(
    ("lines", "aliases", "refusal"),
    [
        (["汤", "湖"], "汤水, 湖", "“湖” is the name of another tag, “湖”."),
        (["汤", "羹\t浓汤"], "汤水, 濃湯, 浓汤", "“浓汤” is an alias of another tag, “羹”."),
    ],
    ids=["another-tags-name", "another-tags-alias"],
)
def test_the_vocabulary_form_refuses_an_alias_another_tag_holds(client_as, lines, aliases, refusal) -> None:  # type: ignore[no-untyped-def]
    from moderation.tagging.models import Tag

    tags_import(lines=lines)
    soup = Tag.objects.get(name="汤")
    response = client_as("policy_editor").post(
        f"/tags/vocabulary/{soup.pk}/",
        {"name": "汤", "aliases": aliases, "parent": "", "is_active": "on", "seen": soup.edit_token},
        follow=True,
    )
    assert f"“汤” was not saved: Aliases: {refusal}" in response.content.decode()
    soup.refresh_from_db()
    assert soup.aliases == []


def test_the_tags_queue_says_which_item_you_hold_until_when_and_links_back(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked: /tags/ said nothing of the tag item already held (the review queues do): "You hold video X (until
    HH:MM) — continue", the same line as theirs, and only for the user who holds it."""
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    from moderation.review.models import ReviewTask
    from moderation.review.services import review_claim_next

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    task = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="Street <food>")
    assert 'id="held-item"' not in client.get("/tags/").content.decode()
    assert review_claim_next(user=user, queue=task.queue) == task
    task.refresh_from_db()
    until = timezone.localtime(task.lease_expires_at).strftime("%H:%M")

    page = client.get("/tags/").content.decode()
    held = page[page.index('id="held-item"') :].split("</p>")[0]
    assert (
        f"video #{task.decision.video_id}</span> “Street &lt;food&gt;”" in held
        and f"(item #{task.pk}, until {until})" in held
    )
    assert f'<a href="/tags/task/{task.pk}/?set=' in held and ">continue</a>" in held
    assert 'id="held-item"' not in client_as("moderator").get("/tags/").content.decode()  # another reviewer

    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    page = client.get("/tags/").content.decode()
    assert "your claim lapsed at" in page and "it stays yours until someone else claims it" in page
    # The review queues' page says it alike, in the tags queue's row.
    review = client.get("/review/").content.decode()
    assert f'data-held-in="{task.queue.slug}"' in review
    assert (
        f"video #{task.decision.video_id}</span> “Street &lt;food&gt;”"
        in review[review.index(f'id="held-item-{task.queue.slug}"') :]
    )

    # Its video hidden from them since (routed to a queue of other groups): no "continue" to a 404 (Claim next,
    # one rule with it, does not give it back either).
    from django.contrib.auth.models import Group

    from moderation.review.models import ReviewQueue

    experts = ReviewQueue.objects.create(slug="experts-held", name="Experts")
    experts.allowed_groups.add(Group.objects.create(name="experts-held"))
    ReviewTaskFactory(decision=task.decision, queue=experts)
    assert 'id="held-item"' not in client.get("/tags/").content.decode()
    assert 'id="held-item' not in client.get("/review/").content.decode()


def test_the_tags_queue_says_an_item_held_whose_video_was_hidden_since_as_the_review_queues_do(  # type: ignore[no-untyped-def]
    client_as, policy_version
) -> None:
    """A tagger held a tags item when its video was routed to a queue of other groups: /tags/ showed no "continue"
    (right: it would open as a 404) and nothing else, so the page read as if they held nothing, while the review
    queues' list says why under the queue's row. The tags queue says it with the same words (one partial), until
    "Claim next" hands it back."""
    from django.contrib.auth.models import Group, User

    from moderation.review.models import ReviewQueue, ReviewTask
    from moderation.review.services import review_claim_next

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    task = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=user, queue=task.queue) == task
    assert "data-held-hidden" not in client.get("/tags/").content.decode()  # open to them: "You hold …" instead

    experts = ReviewQueue.objects.create(slug="experts-hidden", name="Experts")
    experts.allowed_groups.add(Group.objects.create(name="experts-hidden"))
    ReviewTaskFactory(decision=task.decision, queue=experts)

    said = "The item you held here is no longer open to you: its video was routed to a restricted queue after you claimed it."
    page = client.get("/tags/").content.decode()
    note = page[page.index(f'data-held-hidden-in="{task.queue.slug}"') :].split("</div>")[0]
    assert said in note and "“Claim next” hands it back" in note
    review = client.get("/review/").content.decode()
    row = review[review.index(f'data-held-hidden-in="{task.queue.slug}"') :].split("</tr>")[0]
    assert said in row  # the same words on both lists
    assert "data-held-hidden" not in client_as("moderator").get("/tags/").content.decode()  # only the holder's

    client.post("/tags/claim/", follow=True)
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.PENDING and task.claimed_by_id is None
    assert "data-held-hidden" not in client.get("/tags/").content.decode()


def test_speech_evidence_of_an_imported_item_links_to_the_line_it_quotes(client_as, vocabulary, encode) -> None:  # type: ignore[no-untyped-def]
    """A KuaiMod record's speech has no timings: a tag found in it is evidence "asr" with no start. Its link
    read "#asr-1", an id no screen has (the tag screen and the transcript panels name speech lines seg-N), so
    following it went nowhere."""
    import re

    from moderation.review.models import ReviewQueue, ReviewTask
    from moderation.tagging.services import tag_candidates_generate
    from tests.factories import DecisionFactory, VideoFactory

    video = VideoFactory(source="kuaimod", file="", title="周末", asr_text="大家好 | 今天吃火锅")
    decision = DecisionFactory(video=video)  # decided: open to moderators
    tag_candidates_generate(video_id=video.pk, encode=encode)
    client = client_as("moderator")
    panel = client.get(f"/tags/video/{video.pk}/panel/").content.decode()
    links = re.findall(r'<a href="#([^"]+)"[^>]*>speech[^<]*</a>', panel)
    assert links == ["seg-1"], panel
    task = ReviewTask.objects.get(decision=decision, queue__kind=ReviewQueue.Kind.TAGS)
    client.post("/tags/claim/")
    screen = client.get(f"/tags/task/{task.pk}/").content.decode()
    assert 'id="seg-1"' in screen and 'href="#seg-1"' in screen


def test_a_tag_item_can_be_given_back_from_its_screen(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked on the demo data: the tag item screen had no Release (the review screen has one): a reviewer who
    could not tag a video held it until its lease ran out, or signed out to free it."""
    from django.contrib.auth.models import User

    from moderation.review.models import ReviewTask
    from moderation.review.services import review_claim_next

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    task = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=user, queue=task.queue) == task

    page = client.get(f"/tags/task/{task.pk}/").content.decode()
    start = page.rindex("<form", 0, page.index('id="tag-release"'))
    form = page[start:].split("</form>")[0]
    assert f'action="/review/{task.pk}/release/"' in form and "Release</button>" in form

    released = client.post(f"/review/{task.pk}/release/", follow=True)

    task.refresh_from_db()
    assert task.status == ReviewTask.Status.PENDING and task.claimed_by is None
    assert released.redirect_chain[-1][0] == "/tags/"
    assert f"Item #{task.pk} is back in the queue." in released.content.decode()


def test_the_tag_search_opened_in_the_browser_is_a_page_and_an_empty_search_says_what_there_is(client_as) -> None:  # type: ignore[no-untyped-def]
    """``/tags/search/?q=`` opened directly answered a bare list item (or nothing): no page, no box to type in.
    Opened without htmx it is now a page with its own search box; asked by htmx with nothing typed, it says how
    many tags there are to search instead of an empty list."""
    tags_import(lines=["美食", "街头美食", "美女"])
    client = client_as("moderator")

    page = client.get("/tags/search/", {"q": ""})
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html and "<h1>Tag search</h1>" in html
    assert 'id="tag-search-q"' in html and "Type to search the 3 tags" in html
    found = client.get("/tags/search/", {"q": "美食"}).content.decode()
    assert "<h1>Tag search</h1>" in found and 'value="美食"' in found
    results = found[found.index('id="tag-search-results"') :]
    assert "街头美食" in results and "美女" not in results

    fragment = client.get("/tags/search/", {"q": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "Type to search the 3 tags" in fragment
    assert "data-add-tag" not in fragment


def test_claim_next_on_the_tags_queue_says_the_items_left_are_your_own_uploads(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked: with only their own uploads left, "Claim next" on /tags/ said "The tags queue is empty." beside a
    count of items waiting; it now says why, as the review queues do."""
    from django.contrib.auth.models import User

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    TagTaskFactory(decision__policy_version=policy_version, decision__video__created_by=user)
    said = [str(m) for m in client.post("/tags/claim/", follow=True).context["messages"]]
    assert said == [
        "Nothing to claim for you: the 1 item left in “Content tags” is your own upload, and a reviewer never "
        "decides their own content; another reviewer will take it."
    ]
    ReviewTaskFactory._meta.model.objects.all().delete()
    said = [str(m) for m in client.post("/tags/claim/", follow=True).context["messages"]]
    assert said == ["Queue is empty."]


def test_submitting_a_tag_item_names_it_on_the_next_items_screen(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked: "Tags saved: 3 accepted, 9 rejected, 0 added." sat above the next item's title, as if about it."""
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next

    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    first = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="Miracle herbal tea")
    second = TagTaskFactory(decision__policy_version=policy_version)
    assert review_claim_next(user=user, queue=first.queue) == first
    answer = client.post(f"/tags/video/{first.decision.video_id}/submit/", {"task": first.pk}, follow=True)
    assert answer.redirect_chain[-1][0].startswith(f"/tags/task/{second.pk}/")
    said = [str(m) for m in answer.context["messages"]]
    assert said == [
        f"Tags of video #{first.decision.video_id} “Miracle herbal tea” saved: 0 accepted, 0 rejected, 0 added."
    ]


def test_the_tag_screen_keeps_its_ticks_in_the_browser_as_the_policy_editor_keeps_an_edit(  # type: ignore[no-untyped-def]
    client_as, policy_version
) -> None:
    """Walked (hwalk15 row 12): the session expired on the tag screen and the submit landed on the CSRF page, which
    echoes typed text only: the ticked chips were lost. The tag form is now kept by the policy editor's mechanism
    (data-keep-unsent, static/workbench.js), one key per item; the tag screen (where a sent submit lands: the next
    item) clears kept ticks already sent. The review screen's panel (htmx, no item) keeps nothing."""
    from django.contrib.auth.models import User

    from moderation.review.services import review_claim_next

    task = TagTaskFactory(decision__policy_version=policy_version)
    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    assert review_claim_next(user=user, queue=task.queue) == task
    screen = client.get(f"/tags/task/{task.pk}/").content.decode()
    assert f'data-keep-unsent="tags:{task.pk}"' in screen
    assert 'data-unsent-saved="tags:"' in screen
    panel = client.get(f"/tags/video/{task.decision.video_id}/panel/").content.decode()
    assert "data-keep-unsent" not in panel and 'hx-post="/tags/video/' in panel


def test_the_type_ahead_ranks_the_videos_suggestions_then_popular_tags_and_says_how_many_matched(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked: typing "美" on a food video listed 美人, 美味, … before 美食 (11th: names of equal length fell to
    code-point order) and never said how many tags matched. Now the exact name comes first, then the tags the ranker
    suggested for this video (higher score first), then the tags accepted most often, then shorter names; the list
    ends with "N matches" or "first 20 of N matches"."""
    from moderation.tagging.models import Tag
    from tests.factories import DecisionFactory, TagSuggestionFactory, VideoFactory

    tags_import(
        lines=["美", "美食", "美甲", "美人", "美味", "美女"]
        + [f"美{c}" for c in "一二三四五六七八九十百千万亿"]
        + [
            "街头美食",
            "美食教程",
            "甜美风格",
            "美丽乡村",
        ]
    )
    Tag.objects.filter(name="美女").update(accepted_count=7)
    video = DecisionFactory(video__file="").video  # decided: open to every reviewer
    TagSuggestionFactory(video=video, tag=Tag.objects.get(name="美甲"), score=0.3)
    TagSuggestionFactory(video=video, tag=Tag.objects.get(name="美食"), score=0.9)
    hidden = VideoFactory(file="")  # not decided yet: its uploader's only
    TagSuggestionFactory(video=hidden, tag=Tag.objects.get(name="美味"), score=0.99)
    client = client_as("moderator")

    def names(body: str) -> list[str]:
        return re.findall(r'data-tag-name="([^"]+)"', body)

    body = client.get("/tags/search/", {"q": "美", "video": video.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert names(body)[:4] == ["美", "美食", "美甲", "美女"]
    assert "first 20 of 24 matches" in body
    # Without the video (the search page, the curation box): the exact name, then popularity, then shorter names.
    alone = client.get("/tags/search/", {"q": "美", "video": "x"}, HTTP_HX_REQUEST="true").content.decode()
    assert names(alone)[:2] == ["美", "美女"]
    few = client.get("/tags/search/", {"q": "美食", "video": video.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert names(few)[0] == "美食" and "3 matches" in few and "first" not in few
    # A video the caller may not see ranks nothing (its suggestions would say what it is about).
    unseen = client.get("/tags/search/", {"q": "美", "video": hidden.pk}, HTTP_HX_REQUEST="true").content.decode()
    assert names(unseen)[:2] == ["美", "美女"]
    page = client.get("/tags/search/", {"q": "街头"}).content.decode()
    assert "1 match<" in page


def test_a_vocabulary_parent_may_be_typed_as_an_alias_of_the_tag(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walk 21: the demo vocabulary's names are Chinese and its aliases English; an editor who typed "Food" (an alias of
    美食) as the parent of 汤 was told "“Food” is not a tag." with nothing to pick from. An alias (any case) stands for
    its tag, and the confirmation names the tag it was taken for; a word that is neither still says so."""
    from moderation.tagging.models import Tag

    tags_import(lines=["汤\tsoup", "美食\tfood, cooking"])
    soup, food = Tag.objects.get(name="汤"), Tag.objects.get(name="美食")
    editor = client_as("policy_editor")
    saved = editor.post(
        f"/tags/vocabulary/{soup.pk}/",
        {"name": "汤", "aliases": "soup", "parent": "Food", "is_active": "on", "seen": soup.edit_token},
        follow=True,
    )
    assert saved.status_code == 200
    assert "Saved “汤” under “美食” (“Food” is its alias)." in saved.content.decode()
    soup.refresh_from_db()
    assert soup.parent == food

    refused = editor.post(
        f"/tags/vocabulary/{soup.pk}/",
        {"name": "汤", "aliases": "soup", "parent": "foods", "is_active": "on", "seen": soup.edit_token},
    )
    assert refused.status_code == 400
    assert "“foods” is not a tag. Type the name of a tag or one of its aliases." in refused.content.decode()
    soup.refresh_from_db()
    assert soup.parent == food


def test_add_a_tag_keeps_a_gap_before_its_search_box() -> None:
    """Walked (hwalk22 t04): "Add a tag" ran into its box (a label and an input, one space between them)."""
    import re

    from django.conf import settings

    css = (settings.BASE_DIR / "static" / "workbench.css").read_text()
    assert re.search(r"\.tag-search label \{[^}]*margin-right:\s*\.5rem", css)
    panel = (settings.BASE_DIR / "templates" / "moderation" / "tagging" / "_panel.html").read_text()
    assert '<div class="tag-search">\n      <label for="tag-search-' in panel
