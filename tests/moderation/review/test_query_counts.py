"""The review screen and the queue list run a fixed number of queries, however much data there is."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.media.models import Keyframe
from moderation.review.models import ReviewQueue
from moderation.review.services import review_claim_next, review_queue_default
from tests.factories import SegmentFactory
from tests.moderation.review.seeding import seed_pending_tasks

pytestmark = pytest.mark.django_db


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _held_screen(make_task, make_user, title: str):  # type: ignore[no-untyped-def]
    """A moderator's client on the review screen of an item they hold (video titled ``title``), its URL, and
    the screen's query count with no pair yet (the session warmed first)."""
    task = make_task(decision__video__title=title)
    user = make_user("moderator")
    review_claim_next(user=user)
    client = Client()
    client.force_login(user)
    url = reverse("moderation:review_task", args=[task.pk])
    _queries(client, url)  # warm the session
    return task.decision.video, user, client, url, _queries(client, url)


def _screen_queries(make_task, make_user, *, keyframes: int, segments: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    task = make_task(priority=1000)
    video = task.decision.video
    for i in range(keyframes):
        Keyframe.objects.create(
            video=video, index=i, timestamp=i * 0.5, image=f"keyframes/{i}.jpg", selected=i % 2 == 0
        )
    for i in range(segments):
        SegmentFactory(video=video, index=i, start=i, end=i + 1, text=f"segment {i}")
    user = make_user("moderator")
    task = review_claim_next(user=user)
    client = Client()
    client.force_login(user)
    _queries(client, reverse("moderation:review_task", args=[task.pk]))  # warm the session
    screen = _queries(client, reverse("moderation:review_task", args=[task.pk]))
    queue_list = _queries(client, reverse("moderation:queue"))
    from moderation.review.services import review_release

    review_release(task=task, user=user)
    from moderation.review.models import ReviewTask

    ReviewTask.objects.filter(pk=task.pk).update(status=ReviewTask.Status.DONE)
    return screen, queue_list


def test_review_screen_and_queue_list_query_counts_do_not_grow(make_task, make_user, policy_version):
    # One item waiting beside the one held, so that the small list too has a queue to offer (and probes it for
    # items this reviewer may not take): the list's queries are then the same however long its queues are.
    make_task()
    small_screen, small_list = _screen_queries(make_task, make_user, keyframes=1, segments=1)

    # Many more items, queues, keyframes and segments.
    seed_pending_tasks(n=300, queue=review_queue_default(), policy_version=policy_version)
    for i in range(5):
        queue = ReviewQueue.objects.create(name=f"Q{i}", slug=f"q{i}")
        seed_pending_tasks(n=20, queue=queue, policy_version=policy_version)
    big_screen, big_list = _screen_queries(make_task, make_user, keyframes=40, segments=60)

    assert big_screen == small_screen, (small_screen, big_screen)
    assert big_list == small_list, (small_list, big_list)
    # One is the "N waiting" count, counted now (not the queue list's cached one); one the likely re-upload line's;
    # one this reviewer's own skip of the item (an item skipped that comes back says when and why). Three are the tags
    # panel's, drawn with the page (``video_tags_panel``): it was a second request after the page, of 11 queries, then
    # five with the page (see the panel's own test below). The signed-in user's roles (the header) are read with
    # their groups' permissions, in one statement, not two (``user_role_names``). One is the policy's active version:
    # a newer one's labels let the override filter say that vN has a word the item's version lacks (hwalk22 m10).
    assert small_screen <= 18


def test_text_only_item_renders_without_a_player(make_task, make_user):
    task = make_task(decision__video__file="")
    user = make_user("moderator")
    review_claim_next(user=user)
    client = Client()
    client.force_login(user)
    html = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "text-only item" in html and "<video" not in html


def test_review_screen_says_the_item_is_a_likely_reupload_within_one_query(make_task, make_user):
    """Walked: the review screen never said its item re-uploads another video. Now a line names the earlier video
    and links to the pair screen, for pairs at or above the pair queue's threshold whose videos the reviewer may
    see, at one query more than a screen with no pair (which only asks whether it has one)."""
    from moderation.reproduction.models import PairReview, ReproCandidate
    from moderation.reproduction.selectors import PAIR_QUEUE_THRESHOLD
    from tests.factories import DecidedVideoFactory, VideoFactory

    copy, user, client, url, without = _held_screen(make_task, make_user, "Copy")
    assert "Likely re-upload" not in client.get(url).content.decode()

    seen = ReproCandidate.objects.create(video=copy, original=DecidedVideoFactory(title="Cat <b>"), score=0.97)
    low = ReproCandidate.objects.create(video=copy, original=DecidedVideoFactory(title="Low"), score=0.2)
    ReproCandidate.objects.create(video=copy, original=VideoFactory(title="Hidden"), score=0.99)  # not decided yet
    unrelated = ReproCandidate.objects.create(video=copy, original=DecidedVideoFactory(title="Judged"), score=0.9)
    PairReview.objects.create(candidate=unrelated, reviewer=user, verdict=ReproCandidate.Label.UNRELATED)
    ReproCandidate.objects.create(video=DecidedVideoFactory(title="Later"), original=copy, score=0.95)
    assert low.score < PAIR_QUEUE_THRESHOLD

    html = client.get(url).content.decode()
    pair_url = reverse("moderation:repro_pair", args=[seen.pk])
    assert f"Likely re-upload of “Cat &lt;b&gt;” (#{seen.original_id}, score 0.970)" in html
    assert f'<a href="{pair_url}">pair #{seen.pk}</a>' in html
    assert "“Low”" not in html and "“Hidden”" not in html and "“Judged”" not in html
    assert "Likely re-upload of “Later”" not in html  # a later copy of the item is said the other way round
    # A screen whose video has no likely pair asks only whether it has one (one cheap query); with pairs the line
    # takes one query more, whatever their number.
    assert _queries(client, url) == without + 1
    assert without <= 17  # three of them the tags panel's (see above); one the newer-version check


def test_the_originals_review_screen_names_its_likely_later_copies_in_the_same_query(make_task, make_user):
    """The review screen of a later upload said it is a likely re-upload of an earlier video; the earlier video's
    own screen said nothing of the copies made of it (only its video page listed them). It now names them, the
    strongest first with the pair screen, only those the reviewer may open, and how many more the video's page
    lists, in the re-upload line's one query (pairs on both sides)."""
    from moderation.reproduction.models import PairReview, ReproCandidate
    from tests.factories import DecidedVideoFactory, VideoFactory

    original, user, client, url, without = _held_screen(make_task, make_user, "Original")

    def copy(title: str, score: float, **video) -> ReproCandidate:  # type: ignore[no-untyped-def]
        made = (VideoFactory if video.pop("undecided", False) else DecidedVideoFactory)(title=title, **video)
        return ReproCandidate.objects.create(video=made, original=original, score=score)

    strongest = copy("Copy <one>", 0.97)
    judged = copy("Copy two", 0.95)
    PairReview.objects.create(candidate=judged, reviewer=user, verdict=ReproCandidate.Label.REPRODUCTION)
    third = copy("Copy three", 0.93)
    copy("Copy four", 0.92)
    copy("Copy five", 0.91)
    copy("Weak", 0.2)
    copy("Not decided yet", 0.99, undecided=True)  # open only to its uploader: not named, not counted
    unrelated = copy("Judged unrelated", 0.96)
    PairReview.objects.create(candidate=unrelated, reviewer=user, verdict=ReproCandidate.Label.UNRELATED)
    earlier = ReproCandidate.objects.create(video=original, original=DecidedVideoFactory(title="Earlier"), score=0.9)

    html = client.get(url).content.decode()
    line = html[html.index('id="reupload"') : html.index("</p>", html.index('id="reupload"'))]
    assert f"Likely re-upload of “Earlier” (#{earlier.original_id}, score 0.900)" in line
    assert f"Likely re-uploaded later as “Copy &lt;one&gt;” (#{strongest.video_id}, score 0.970)" in line
    assert f'<a href="{reverse("moderation:repro_pair", args=[strongest.pk])}">pair #{strongest.pk}</a>' in line
    assert f"“Copy two” (#{judged.video_id}, score 0.950) — " in line and "<strong>Reproduction</strong>" in line
    assert f"“Copy three” (#{third.video_id}, score 0.930)" in line
    assert line.count("Likely re-uploaded later as") == 3  # the strongest few; the rest on the video's page
    later = reverse("moderation:video_repro_pairs", args=[original.pk]) + "?side=copies"
    assert f'and <a href="{later}">2 more later copies</a>' in line
    for hidden in ("Copy four", "Copy five", "Weak", "Not decided yet", "Judged unrelated"):
        assert hidden not in html
    # The link keeps the line's promise: the later copies, the 2 more among them, and only them (it opened every pair
    # of the video, both ways: the earlier video it copies, and the copies judged unrelated, in the same list).
    listed = client.get(later).content.decode()
    for named in ("Copy &lt;one&gt;", "Copy two", "Copy three", "Copy four", "Copy five"):
        assert f"“{named}”" in listed, named
    for hidden in ("“Earlier”", "Judged unrelated", "Not decided yet", "“Weak”"):
        assert hidden not in listed, hidden
    assert _queries(client, url) == without + 1  # the same one query more as with pairs on one side


def test_the_tags_panel_drawn_with_the_screen_reads_in_three_queries_whatever_it_shows(make_task, make_user):
    """The tags panel drawn with the review screen (``video_tags_panel``) read the default tag set, the set's tags,
    the chips, their evidence, the video's tags and its tagging state in a query each, with every chip's tag
    embedding: its three queries now are the set, the chips (with their evidence) and the video's tags with its
    state, as many with chips, evidence, tags of its own and a failed candidate run as with none, and no embedding."""
    from moderation.tagging.models import TagCandidate, TagSet, VideoTag, VideoTagState
    from tests.factories import TagFactory, TagSuggestionFactory

    video, user, client, url, without = _held_screen(make_task, make_user, "Tagged")
    assert without <= 17  # the screen's own 14 (one the newer-version check), and the panel's three

    food, travel, kept = (
        TagFactory(name="food", aliases=["meal", "dish", "eat"]),
        TagFactory(name="travel"),
        TagFactory(),
    )
    TagSuggestionFactory(video=video, tag=food, score=0.95, sources=["text", "vlm"])
    TagSuggestionFactory(video=video, tag=travel, score=0.6, sources=["prior"])
    TagCandidate.objects.create(
        video=video, tag=food, source="text", score=0.9, evidence=[{"field": "ocr", "segment": 2, "text": "hot pot"}]
    )
    TagCandidate.objects.create(
        video=video, tag=food, source="related", score=0.7, evidence=[{"field": "related", "from": "hot pot",
                                                                       "how": "co-occurs", "score": 0.5}]
    )  # fmt: skip
    VideoTag.objects.create(video=video, tag=kept, added_by=user)
    VideoTagState.objects.create(video=video, error="encoder down")
    TagSet.objects.filter(is_default=True).update(show_threshold=0.5)

    with CaptureQueriesContext(connection) as ctx:
        html = client.get(url).content.decode()
    panel = html[html.index('id="tags-panel"') :]
    assert 'class="chip-name">food</span>' in panel and "(meal, dish)" in panel and "“hot pot”" in panel
    assert "tagged together with “hot pot”" in panel and 'class="chip-name">travel</span>' in panel
    assert (
        f'<input type="hidden" name="seen" value="{kept.pk}">' in panel
        and "Tag candidates failed: encoder down" in panel
    )
    assert len(ctx.captured_queries) == without
    tag_queries = [q["sql"] for q in ctx.captured_queries if '"moderation_tag' in q["sql"] or "videotag" in q["sql"]]
    assert len(tag_queries) == 3, tag_queries
    assert not any("embedding" in sql for sql in tag_queries)


def test_each_decision_draws_one_tags_panel_the_next_items_in_its_prefetched_screen(make_task, make_user):
    """With the panel drawn in the screen, the screen fetched ahead draws it too: once per item, in that fetch. The
    page names the item ahead but draws only its own item's panel, and the decision sent in the background answers
    JSON without reading a tag table (the screen it swaps in was drawn by the prefetch)."""
    first, second, third = make_task(priority=3), make_task(priority=2), make_task(priority=1)
    client = Client()
    client.force_login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))  # claims the first and, ahead, the second

    page = client.get(reverse("moderation:review_task", args=[first.pk])).content.decode()
    assert page.count('id="tags-panel"') == 1 and f'data-video="{first.decision.video_id}"' in page

    def tag_reads(ctx: CaptureQueriesContext) -> int:
        return sum('"moderation_tag' in q["sql"] or "videotag" in q["sql"] for q in ctx.captured_queries)

    with CaptureQueriesContext(connection) as decided:
        data = client.post(
            reverse("moderation:review_submit", args=[first.pk]), {"verdict": "approve"}, HTTP_X_REVIEW_BACKGROUND="1"
        ).json()
    assert (data["next"], data["ahead"]) == (second.pk, third.pk) and tag_reads(decided) == 0
    with CaptureQueriesContext(connection) as fetched:
        fragment = client.get(data["ahead_url"], HTTP_HX_REQUEST="true").content.decode()
    assert fragment.count('id="tags-panel"') == 1 and f'data-video="{third.decision.video_id}"' in fragment
    assert tag_reads(fetched) == 3
