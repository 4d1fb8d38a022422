"""The video's page pages its comments as the list screens page their rows (``_pager.html``): it drew every one
of a video's comments, 1,000 of 5,000 characters made a 5 MB page; each page now reads its own comments alone."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation.media.models import Video
from moderation.media.selectors import COMMENTS_PER_PAGE, VideoComments
from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db


def _comments(html: str) -> list[str]:
    return re.findall(r"<li>(comment \d{4})[^<]*</li>", html)


def test_the_video_page_pages_its_comments_and_page_two_shows_the_rest(client_as):
    video = VideoFactory(comments=[f"comment {i:04d} " + "評" * 2000 for i in range(120)])
    client = client_as("admin")
    url = reverse("moderation:video_detail", args=[video.pk])

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url).content.decode()
    second = client.get(url, {"comments_page": 2}).content.decode()
    last = client.get(url, {"comments_page": 3}).content.decode()

    assert _comments(first) == [f"comment {i:04d}" for i in range(COMMENTS_PER_PAGE)]
    assert _comments(second) == [f"comment {i:04d}" for i in range(COMMENTS_PER_PAGE, 2 * COMMENTS_PER_PAGE)]
    assert _comments(last) == [f"comment {i:04d}" for i in range(2 * COMMENTS_PER_PAGE, 120)]
    assert "Comments <small>(120)</small>" in first and "page 1 of 3 (120 comments)" in first
    assert 'href="?comments_page=2#comments" rel="next"' in first
    assert 'start="51"' in second and 'rel="prev"' in second and 'rel="next"' in second
    assert len(first.encode()) < 400_000  # 120 comments of 2,000 three-byte characters: 720 kB before
    # No query of the page selects the comments column itself (only the page's slice and the count).
    whole = [q["sql"][:200] for q in queries.captured_queries if re.search(r'SELECT[^()]*"comments"', q["sql"])]
    assert whole == []


def test_a_page_past_the_end_shows_the_last_and_a_video_without_comments_no_list(client_as):
    client = client_as("admin")
    video = VideoFactory(comments=[f"comment {i:04d}" for i in range(55)])
    past = client.get(reverse("moderation:video_detail", args=[video.pk]), {"comments_page": "99"})
    assert past.status_code == 200
    assert _comments(past.content.decode()) == [f"comment {i:04d}" for i in range(50, 55)]

    bare = client.get(reverse("moderation:video_detail", args=[VideoFactory(comments=[]).pk]))
    assert bare.status_code == 200 and 'id="comments"' not in bare.content.decode()
    odd = VideoFactory()
    Video.objects.filter(pk=odd.pk).update(comments={"not": "a list"})
    answer = client.get(reverse("moderation:video_detail", args=[odd.pk]))
    assert answer.status_code == 200 and 'id="comments"' not in answer.content.decode()


def test_video_comments_slices_read_the_stored_list():
    video = VideoFactory(comments=["a", "b", "c", 4])
    comments = VideoComments(video_id=video.pk)

    assert comments.count() == 4
    assert comments[0:2] == ["a", "b"] and comments[2:50] == ["c", "4"] and comments[9:12] == []
    assert comments[1] == "b" and list(comments) == ["a", "b", "c", "4"]
