"""A tag on the video beyond the suggestions (an "added" chip) shows its first two aliases; the rest were cut without a
word, where a suggested chip names them all in its tooltip. Found walking the tag screen at 1440x900."""

from __future__ import annotations

import pytest
from django.urls import reverse

from moderation.review.services import review_claim_next
from moderation.tagging.models import VideoTag
from moderation.tagging.services import tag_set_default
from tests.factories import TagFactory, TagTaskFactory

pytestmark = pytest.mark.django_db


def test_an_added_chips_cut_aliases_are_whole_in_its_tooltip(policy_version, make_user, client):
    task = TagTaskFactory(decision__policy_version=policy_version)
    tag = TagFactory(name="宠物", aliases=["pet", "pets", "animal companion"])
    VideoTag.objects.create(video=task.decision.video, tag=tag)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator, queue=task.queue) == task
    client.force_login(moderator)
    page = client.get(reverse("moderation:tag_task", args=[task.pk]), {"set": tag_set_default().slug}).content.decode()
    chip = page[page.index('<li class="chip added"') :].split("</li>", 1)[0]
    assert '<small class="hint chip-aliases" title="pet, pets, animal companion">(pet, pets)</small>' in chip
