"""A video's comments on the review screen are bounded: a platform may send 1,000 comments of 5,000 characters
(5 MB) and every one was drawn on the page; the panel shows the first ones, each cut short, and links to all."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.media.models import Video
from moderation.media.selectors import COMMENT_CHARS_SHOWN, COMMENTS_SHOWN
from moderation.review.services import review_claim_next

pytestmark = pytest.mark.django_db


def _review_page(make_task, make_user, comments: list[str]) -> tuple[str, Video]:  # type: ignore[no-untyped-def]
    task = make_task()
    video = task.decision.video
    Video.objects.filter(pk=video.pk).update(comments=comments)
    user = make_user("moderator")
    review_claim_next(user=user)
    client = Client()
    client.force_login(user)
    response = client.get(reverse("moderation:review_task", args=[task.pk]))
    assert response.status_code == 200
    return response.content.decode(), video


def test_a_thousand_long_comments_leave_the_review_page_small_and_link_to_all(make_task, make_user):
    comments = [f"comment {i:04d} " + "評" * 4990 for i in range(1000)]

    page, video = _review_page(make_task, make_user, comments)

    assert len(page.encode()) < 400_000  # was over 15 MB: 5 million characters, 3 bytes each
    assert "Comments <small>(1000)</small>" in page
    assert "comment 0000 " in page and f"comment {COMMENTS_SHOWN - 1:04d} " in page
    assert f"comment {COMMENTS_SHOWN:04d} " not in page
    assert page.count("(cut short)") == COMMENTS_SHOWN
    assert "評" * COMMENT_CHARS_SHOWN not in page  # each cut short
    assert f"Showing the first {COMMENTS_SHOWN} of 1000 comments" in page
    assert f'href="{reverse("moderation:video_detail", args=[video.pk])}#comments">read all 1000 in full' in page


def test_a_few_short_comments_are_shown_whole_without_a_note(make_task, make_user):
    page, _video = _review_page(make_task, make_user, ["nice video", "加我微信 abc123"])

    assert "<li>nice video</li>" in page and "<li>加我微信 abc123</li>" in page
    assert "data-comments-cut" not in page and "(cut short)" not in page


def _reads_whole_comments(sql: str) -> bool:
    """Whether ``sql`` selects a video's ``comments`` column itself, not only inside the bounded expressions of
    ``video_comments_preview`` (``jsonb_typeof(col)``, ``THEN col ELSE``: the first comments, cut, and the count)."""
    sql = re.sub(r'jsonb_typeof\([^()]*"comments"\)', "", sql)
    sql = re.sub(r'THEN \S+"comments" ELSE', "", sql)
    return '"comments"' in sql


def test_the_review_screen_reads_the_first_comments_and_the_count_not_the_whole_field(make_task, make_user):
    """The panel shows 50 comments, each cut at 1,000 characters: its query read the video's whole row, every one of
    1,000 comments of 5,000 characters (5 MB from the database for each screen of the item, each prefetch too)."""
    task = make_task()
    comments = [f"comment {i:04d} " + "x" * 4990 for i in range(1000)]
    Video.objects.filter(pk=task.decision.video_id).update(comments=comments)
    user = make_user("moderator")
    review_claim_next(user=user)
    client = Client()
    client.force_login(user)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("moderation:review_task", args=[task.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Comments <small>(1000)</small>" in page and f"Showing the first {COMMENTS_SHOWN} of 1000" in page
    assert page.count("(cut short)") == COMMENTS_SHOWN
    whole = [q["sql"][:300] for q in queries.captured_queries if _reads_whole_comments(q["sql"])]
    assert whole == []
    # The one query that reads the item reads the comments' preview along (no query of its own).
    assert sum("comments_head" in q["sql"] for q in queries.captured_queries) == 1


def test_comments_that_are_not_a_list_show_no_panel_rather_than_fail(make_task, make_user):
    page, _video = _review_page(make_task, make_user, {"not": "a list"})  # type: ignore[arg-type]

    assert 'id="comments"' not in page
