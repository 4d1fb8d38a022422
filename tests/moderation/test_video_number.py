"""One video, one number: every screen that names a video says "video #N" with its id (the video page's address, the
API's "id"), and the numbers of its review item, tag item and decision are labelled as theirs, never as the video's.

Walkers saw "Item #5" beside a title on the review screen, "Tag item #6" on the tag screen, no number on the video
page and "#9" on the ops page, all for one video."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from moderation.review.services import review_claim_next
from tests.factories import DecisionFactory, ReviewTaskFactory, TagTaskFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _numbers(html: str) -> set[str]:
    """Every "video #N" the page shows (the shared fragment's marked numbers)."""
    return set(re.findall(r'data-video-number="(\d+)">video #\1<', html))


def _h1(html: str) -> str:
    return html[html.index("<h1") : html.index("</h1>")]


@pytest.fixture
def apart(policy_version):  # type: ignore[no-untyped-def]
    """Ids of videos, decisions and items that no longer match (a fresh database numbers them alike, which hides
    exactly the confusion)."""
    for _ in range(3):
        VideoFactory()
    DecisionFactory.create_batch(5, policy_version=policy_version)
    ReviewTaskFactory.create_batch(2, decision__policy_version=policy_version)


def test_the_review_screen_the_queue_list_and_the_video_page_name_the_video_by_one_number(
    apart, make_user, policy_version
):  # type: ignore[no-untyped-def]
    task = ReviewTaskFactory(decision__policy_version=policy_version, decision__video__title="Tea ad", priority=999)
    video = task.decision.video
    assert len({video.pk, task.pk, task.decision_id}) == 3
    user = make_user("moderator")
    assert review_claim_next(user=user) == task
    client = Client()
    client.force_login(user)

    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    queue = client.get(reverse("moderation:queue")).content.decode()
    page = client.get(reverse("moderation:video_detail", args=[video.pk])).content.decode()
    listed = client.get(reverse("moderation:video_list")).content.decode()
    api = client.get(f"/api/videos/{video.pk}/").json()

    for html in (screen, queue, page):
        assert _numbers(html) == {str(video.pk)}
    assert str(video.pk) in _numbers(listed)
    assert api["id"] == video.pk
    # The item keeps its number, labelled as the item's, and not beside the title where the video's belongs.
    assert not re.search(rf"#{task.pk}\b", _h1(screen)) and f"video #{video.pk}" in _h1(screen)
    assert f"<dt>Review item</dt><dd data-item-number>#{task.pk}</dd>" in screen
    assert f"video #{video.pk}" in _h1(page)
    assert f"(item #{task.pk}, until" in queue


def test_the_tag_screen_and_its_saved_message_name_the_video_not_the_tag_item(apart, make_user, policy_version):  # type: ignore[no-untyped-def]
    first = TagTaskFactory(decision__policy_version=policy_version, decision__video__title="Herbal tea")
    TagTaskFactory(decision__policy_version=policy_version)
    video = first.decision.video
    assert video.pk != first.pk
    user = make_user("moderator")
    assert review_claim_next(user=user, queue=first.queue) == first
    client = Client()
    client.force_login(user)

    screen = client.get(reverse("moderation:tag_task", args=[first.pk])).content.decode()
    assert f"video #{video.pk}" in _h1(screen) and _numbers(_h1(screen)) == {str(video.pk)}
    assert f"tag item #{first.pk}" in _h1(screen)

    saved = client.post(f"/tags/video/{video.pk}/submit/", {"task": first.pk}, follow=True)
    assert [str(m) for m in saved.context["messages"]][0].startswith(f"Tags of video #{video.pk} “Herbal tea” saved")


def test_the_correction_screen_names_the_decisions_video(apart, policy_version):  # type: ignore[no-untyped-def]
    decision = DecisionFactory(policy_version=policy_version)
    assert decision.pk != decision.video_id
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-test-123"))

    html = client.get(reverse("annotation:correction_edit", args=[decision.pk])).content.decode()

    assert f"Correct decision #{decision.pk}" in _h1(html)
    assert _numbers(_h1(html)) == {str(decision.video_id)}
