"""A tags submission names only tags its panel offered: an add from the tag set's tags, an accept or reject of a
suggestion the panel drew. A hand-made POST naming anything else (a tag outside the set, a "reject" of a tag never
suggested) is refused whole, naming the tags: nothing recorded, the item still held. Its events are the ranker's
training data."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from moderation.errors import ModerationError
from moderation.review.models import ReviewTask
from moderation.review.services import review_claim_next
from moderation.tagging import services
from moderation.tagging.models import TagEvent, TagSet, VideoTag
from tests.factories import TagFactory, TagTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def _claimed(user: User, **kwargs: Any) -> ReviewTask:
    task = TagTaskFactory(**kwargs)
    claimed = review_claim_next(user=user, queue=task.queue)
    assert claimed is not None and claimed.pk == task.pk
    return claimed


def _ads_safe(*tags: Any) -> TagSet:
    tag_set = TagSet.objects.create(name="Ads safe", slug="ads-safe")
    tag_set.tags.set(tags)
    return tag_set


def test_an_add_outside_the_tag_set_is_refused_naming_it_and_nothing_is_recorded(client_as) -> None:  # type: ignore[no-untyped-def]
    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    food, cars, gambling = TagFactory(name="美食"), TagFactory(name="汽车"), TagFactory(name="博彩")
    _ads_safe(food, cars)
    task = _claimed(user, suggestions=[(food, 0.8)])
    video_id = task.decision.video_id

    answer = client.post(
        f"/tags/video/{video_id}/submit/",
        {"task": task.pk, "set": "ads-safe", "shown": [food.pk], "tag": [food.pk, gambling.pk]},
        follow=True,
    )

    page = answer.content.decode()
    assert "“博彩” is not in the tag set “Ads safe”" in page
    assert "Nothing was saved" in page
    assert not TagEvent.objects.filter(video_id=video_id).exists()
    assert not VideoTag.objects.filter(video_id=video_id).exists()
    task.refresh_from_db()
    assert (task.status, task.claimed_by_id) == (ReviewTask.Status.CLAIMED, user.pk)


def test_a_reject_of_a_tag_never_suggested_for_the_video_is_refused_on_the_panel(client_as) -> None:  # type: ignore[no-untyped-def]
    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    food, travel = TagFactory(name="美食"), TagFactory(name="旅游")
    task = _claimed(user, suggestions=[(food, 0.8)])
    video_id = task.decision.video_id

    # The review screen's panel (htmx): the refusal is drawn in the panel, as a stale save's is.
    answer = client.post(
        f"/tags/video/{video_id}/submit/",
        {"shown": [food.pk, travel.pk], "tag": [food.pk]},
        HTTP_HX_REQUEST="true",
    )

    assert answer.status_code == 409
    assert "“旅游” was not suggested for this video" in answer.content.decode()
    assert not TagEvent.objects.filter(video_id=video_id).exists()
    assert not VideoTag.objects.filter(video_id=video_id).exists()
    # A made-up id is named by its number; the task (held) is left as it was.
    with pytest.raises(ModerationError, match=r"tag #987654 was not suggested"):
        services.tags_review_submit(
            video_id=video_id, user=user, selected=[food.pk], shown=[food.pk, 987654], task=task
        )
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.CLAIMED
    assert not TagEvent.objects.filter(video_id=video_id).exists()


def test_a_suggestion_outside_the_chosen_tag_set_cannot_be_answered_under_it() -> None:
    food, cars = TagFactory(name="美食"), TagFactory(name="汽车")
    tag_set = _ads_safe(food)
    task = TagTaskFactory(suggestions=[(food, 0.8), (cars, 0.7)])

    with pytest.raises(ModerationError, match="“汽车” was not suggested"):
        services.tags_review_submit(
            video_id=task.decision.video_id,
            user=UserFactory(role="moderator"),
            selected=[food.pk],
            shown=[food.pk, cars.pk],
            tag_set=tag_set,
        )
    assert not TagEvent.objects.exists()


def test_an_honest_submit_records_accept_reject_and_an_add_from_the_set(client_as) -> None:  # type: ignore[no-untyped-def]
    client = client_as("moderator")
    user = User.objects.get(pk=client.session["_auth_user_id"])
    food, hotpot, cars, other = TagFactory(name="美食"), TagFactory(name="火锅"), TagFactory(name="汽车"), TagFactory()
    _ads_safe(food, hotpot, cars)
    task = _claimed(user, suggestions=[(food, 0.8), (hotpot, 0.6)])
    video_id = task.decision.video_id
    # A tag the video already has from another set is kept (drawn as an added chip), not refused.
    VideoTag.objects.create(video_id=video_id, tag=other)

    answer = client.post(
        f"/tags/video/{video_id}/submit/",
        {
            "task": task.pk,
            "set": "ads-safe",
            "shown": [food.pk, hotpot.pk],
            "tag": [food.pk, cars.pk, other.pk],
            "seen_sent": "1",
            "seen": [other.pk],
        },
        follow=True,
    )

    assert "Tags of video" in answer.content.decode()
    actions = dict(TagEvent.objects.filter(video_id=video_id).values_list("tag_id", "action"))
    assert actions == {food.pk: "accept", hotpot.pk: "reject", cars.pk: "add", other.pk: "add"}
    assert set(VideoTag.objects.filter(video_id=video_id).values_list("tag_id", flat=True)) == {
        food.pk,
        cars.pk,
        other.pk,
    }
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.DONE
