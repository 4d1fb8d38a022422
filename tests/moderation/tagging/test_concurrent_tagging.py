"""Two taggers on one video at once (the tags queue's screen and a review screen's panel, or two review screens):
one after the other on the video's row, and a save over tags someone else saved since the panel was drawn is
refused with what the tags are now, never a 500 and never silently written over theirs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError
from django.test import Client

from moderation.tagging.models import Tag, TagEvent, VideoTag
from moderation.tagging.services import tag_set_default, tags_import
from tests.factories import DecidedVideoFactory
from tests.races import race

pytestmark = pytest.mark.django_db(transaction=True)


def _setup(make_user):  # type: ignore[no-untyped-def]
    tags_import(lines=["美食", "旅游"])
    tag_set_default()  # made by the first screen that needs it, long before two taggers meet
    food, travel = Tag.objects.get(name="美食"), Tag.objects.get(name="旅游")
    video = DecidedVideoFactory(file="")
    clients = []
    for _ in range(2):
        client = Client()
        client.force_login(make_user("moderator"))
        clients.append(client)
    return video, food, travel, clients


def _save(client: Client, video: Any, tags: list[Tag], *, seen: list[Tag] | None) -> Any:
    """The panel's Save: the chosen tags, and (a panel drawn with this rule) the tags it showed as the video's."""
    data: dict[str, Any] = {"tag": [t.pk for t in tags]}
    if seen is not None:
        data |= {"seen_sent": "1", "seen": [t.pk for t in seen]}
    return client.post(f"/tags/video/{video.pk}/submit/", data, HTTP_HX_REQUEST="true")


def test_two_taggers_saving_at_once_get_one_save_and_a_clear_refusal_not_a_500(make_user):
    """Both panels were drawn with no tags. Unlocked, the second's insert of the tag both chose waited for the
    first, then failed on ``one_video_tag``: an IntegrityError, a 500 to the tagger."""
    video, food, travel, (alice, bob) = _setup(make_user)

    raced = race(
        lambda: _save(alice, video, [food], seen=[]),
        lambda: _save(bob, video, [food, travel], seen=[]),
    )

    assert raced.second_waited, "the second save did not wait for the first"
    assert not isinstance(raced.second, IntegrityError), "the second tagger got a 500"
    assert raced.first.status_code == 200
    assert raced.second.status_code == 409
    said = raced.second.content.decode()
    assert "Someone else saved this video&#x27;s tags a moment ago" in said and "美食" in said
    assert set(VideoTag.objects.filter(video=video).values_list("tag_id", flat=True)) == {food.pk}
    food.refresh_from_db(), travel.refresh_from_db()
    assert (food.accepted_count, travel.accepted_count) == (1, 0)
    assert TagEvent.objects.filter(video=video).count() == 1  # the refused save recorded nothing


def test_a_form_without_what_it_showed_still_saves_one_after_the_other(make_user):
    """A panel drawn before this rule sends no ``seen``: the two saves are taken one after the other, the later
    one's tags are the video's, and the accepted counts follow (no IntegrityError)."""
    video, food, travel, (alice, bob) = _setup(make_user)

    raced = race(
        lambda: _save(alice, video, [food], seen=None),
        lambda: _save(bob, video, [food, travel], seen=None),
    )

    assert not isinstance(raced.second, IntegrityError), "the second tagger got a 500"
    assert raced.first.status_code == 200 and raced.second.status_code == 200
    assert set(VideoTag.objects.filter(video=video).values_list("tag_id", flat=True)) == {food.pk, travel.pk}
    food.refresh_from_db(), travel.refresh_from_db()
    assert (food.accepted_count, travel.accepted_count) == (1, 1)


def test_a_save_from_a_panel_drawn_before_someone_elses_save_does_not_drop_their_tags(make_user):
    """Bob's panel was drawn while the video had no tags; Alice saved "美食" meanwhile. Bob's "旅游" replaced it
    without a word (the later save wins, and Alice's tag was gone)."""
    video, food, travel, (alice, bob) = _setup(make_user)
    assert _save(alice, video, [food], seen=[]).status_code == 200

    late = _save(bob, video, [travel], seen=[])

    assert late.status_code == 409
    assert "Someone else saved this video&#x27;s tags" in late.content.decode()
    assert set(VideoTag.objects.filter(video=video).values_list("tag_id", flat=True)) == {food.pk}
    # The panel Bob gets back shows the tags as they are now: saving from it goes through.
    assert _save(bob, video, [food, travel], seen=[food]).status_code == 200
    assert set(VideoTag.objects.filter(video=video).values_list("tag_id", flat=True)) == {food.pk, travel.pk}


def test_the_same_selection_sent_twice_is_saved_once_without_a_refusal(make_user):
    video, food, _travel, (alice, _bob) = _setup(make_user)

    assert _save(alice, video, [food], seen=[]).status_code == 200
    again = _save(alice, video, [food], seen=[])  # a double click: the form still says the video had no tags

    assert again.status_code == 200
    assert TagEvent.objects.filter(video=video).count() == 1
    food.refresh_from_db()
    assert food.accepted_count == 1


def test_a_tag_retired_while_its_chip_is_on_a_taggers_screen_is_not_put_on_the_video(make_user):
    """The curator retires "旅游" as the tagger saves it. Before, the save read the tag as active just before the
    retirement committed and put the retired tag on the video."""
    from moderation.tagging.services import tag_update

    video, _food, travel, (alice, _bob) = _setup(make_user)
    curator = make_user("policy_editor")

    raced = race(
        lambda: tag_update(tag=travel, user=curator, is_active=False),
        lambda: _save(alice, video, [travel], seen=[]),
    )

    assert raced.second_waited
    assert raced.second.status_code == 409
    assert "A chosen tag is no longer in the vocabulary" in raced.second.content.decode()
    assert not VideoTag.objects.filter(video=video).exists()


def _held_tag_item(make_user):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from moderation.review.services import review_claim_next
    from moderation.tagging.services import tag_queue_default
    from tests.factories import ReviewTaskFactory, TagTaskFactory

    video, food, _travel, _clients = _setup(make_user)
    queue = tag_queue_default()
    taggers = Group.objects.create(name="taggers")
    queue.allowed_groups.add(taggers)
    ReviewTaskFactory(decision=video.decisions.get())  # its moderation item, in the default queue open to all
    item = TagTaskFactory(decision=video.decisions.get())
    bob = make_user("moderator")
    bob.groups.add(taggers)
    assert review_claim_next(user=bob, queue=queue).pk == item.pk
    return video, food, item, taggers, bob


def test_a_tagger_taken_out_of_the_tags_queues_group_cannot_close_the_item_they_hold(make_user):
    """Before: only the claim was checked, so the item was closed with tags by someone who may no longer work it."""
    from django.contrib.auth.models import User

    from moderation.errors import ModerationError
    from moderation.review.models import ReviewTask
    from moderation.tagging.services import tags_review_submit

    video, food, item, taggers, bob = _held_tag_item(make_user)
    # Straight on the membership rows, as SQL would: ``bob.groups.remove`` now gives the item back at once
    # (``review_claims_release_not_allowed``), and the save's own check is the guard for changes it does not see.
    User.groups.through.objects.filter(user_id=bob.pk, group_id=taggers.pk).delete()

    with pytest.raises(ModerationError, match="You may no longer work the queue “Content tags”"):
        tags_review_submit(video_id=video.pk, user=User.objects.get(pk=bob.pk), selected=[food.pk], shown=[], task=item)

    item.refresh_from_db()
    assert item.status == ReviewTask.Status.CLAIMED and not VideoTag.objects.filter(video=video).exists()


def test_a_tag_item_dropped_while_its_screen_is_open_is_said_not_a_500(make_user):
    """Routing dropped the item (its video went to a restricted queue) between the screen's read and the save's lock:
    the save's ``get`` raised DoesNotExist, a 500."""
    from moderation.errors import ModerationError
    from moderation.review.models import ReviewTask
    from moderation.tagging.services import tags_review_submit

    video, food, item, _taggers, bob = _held_tag_item(make_user)
    ReviewTask.objects.filter(pk=item.pk).delete()

    with pytest.raises(ModerationError, match="This item has left the tags queue"):
        tags_review_submit(video_id=video.pk, user=bob, selected=[food.pk], shown=[], task=item)
    assert not VideoTag.objects.filter(video=video).exists()
