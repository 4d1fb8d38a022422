"""What the eighteenth walk of the intelligence screens (cascade, models, tag review, tags queue, vocabulary curation)
at 1440x900 found that the server draws."""

from __future__ import annotations

import pytest
from django.urls import reverse

from moderation.inference.models import ModelVersion
from tests.factories import TagTaskFactory

pytestmark = pytest.mark.django_db


def test_the_tags_queue_says_what_its_numbers_count(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator: "Pending 27 · Claimed 0 · Done 0" above a tag-set picker, with nothing saying whether
    those were videos or tags, of the picked set or all, today or ever."""
    TagTaskFactory(decision__policy_version=policy_version, suggestions=[("美食", 0.9)])

    page = client_as("moderator").get(reverse("moderation:tag_queue")).content.decode()

    table = page[page.index('<table class="stats">') :].split("</table>")[0]
    assert '<caption class="hint" id="tags-counts-caption">Videos in the tags queue you may open' in table
    assert "every tag set together" in table and "tagged since the queue began" in table
    assert '<td data-stat="pending">1</td>' in table


def test_an_empty_curation_queue_says_when_proposals_come_and_who_can_start_them(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin on the demo (evidence baseline serving): the curation queue read only "Nothing to curate.",
    with no word of what would bring proposals nor where to go for it."""
    admin = client_as("admin").get(reverse("moderation:tag_curation")).content.decode()
    empty = admin[admin.index('id="curation-empty"') :].split("</li>")[0]
    assert "Nothing to curate: no phrase a VLM proposed is waiting for a decision." in empty
    assert f'<a href="{reverse("training:model_list")}">promote or choose one on Model versions</a>' in empty

    editor = client_as("policy_editor").get(reverse("moderation:tag_curation")).content.decode()
    empty = editor[editor.index('id="curation-empty"') :].split("</li>")[0]
    assert "until an administrator makes a VLM serve moderation" in empty and "<a " not in empty

    ModelVersion.objects.update(is_serving=False)
    ModelVersion.objects.create(name="vlm-x", backend="transformers", base_model="m", is_serving=True)
    served = client_as("policy_editor").get(reverse("moderation:tag_curation")).content.decode()
    empty = served[served.index('id="curation-empty"') :].split("</li>")[0]
    assert "New ones land here when vlm-x names a tag the vocabulary lacks." in empty


def test_the_tag_events_held_out_share_says_what_it_is_a_share_of(client_as) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the training screen's tag-events form had "Held-out share [0]" with nothing beside it,
    while the dataset form above it says "of the videos, 0–0.9, kept out of training for evaluation"."""
    page = client_as("admin").get(reverse("training:job_list")).content.decode()

    form = page[page.index('id="tag-events"') :].split("</form>")[0]
    assert "Held-out share" in form
    assert '<small class="hint">of the videos, 0–0.9, kept out as the evaluation split (by reproduction cluster' in form
