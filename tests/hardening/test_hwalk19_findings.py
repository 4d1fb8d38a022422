"""Walk hwalk19 (moderator, labeler, policy team and admin in Chromium at 1440x900 and 1024 px on ./run.sh's embedded
default): what a user tripped over, fixed. Each test fails without its fix."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_admin_index_says_policies_not_policys(make_user) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert ">Policies<" in page and "Policys" not in page


def test_the_escalation_threshold_box_says_what_the_number_is(client_as) -> None:  # type: ignore[no-untyped-def]
    """The dashboard's third box read "Escalation threshold [0.04]" beside two target-accuracy boxes that each say
    what they set: what the number measures and which way it routes was left to the page's first line."""
    import re
    from html import unescape

    from django.urls import reverse

    from moderation.inference.cascade_models import CascadeModel

    CascadeModel.objects.create(
        name="stage1", artifact_path="models/stage1.joblib", escalate_threshold=0.04, is_active=True, trained_on=89
    )
    page = client_as("admin").get(reverse("moderation:cascade")).content.decode()
    form = page.split('id="threshold-form"')[1].split("</form>")[0]
    label = " ".join(
        unescape(re.sub(r"<[^>]+>", " ", form.split('<label id="threshold-label">')[1].split("<input")[0])).split()
    )
    assert label == "Escalation threshold (0–1: items whose stage-1 uncertainty is above it go on to the VLM)"


def test_the_tags_panel_says_an_unticked_chip_is_rejected_on_save(client_as) -> None:  # type: ignore[no-untyped-def]
    """A moderator ticked one of twelve chips on the review screen and read "Tags saved: 1 accepted, 11 rejected":
    nothing had said that a chip left unticked is recorded as rejected (the ranker learns from it)."""
    from django.urls import reverse

    from moderation.tagging.models import Tag, TagSuggestion
    from moderation.tagging.services import tags_import
    from tests.factories import DecidedVideoFactory

    tags_import(lines=["萌宠"])
    video = DecidedVideoFactory()
    TagSuggestion.objects.create(video=video, tag=Tag.objects.get(name="萌宠"), score=0.3, sources=["text"])
    panel = client_as("moderator").get(reverse("moderation:tag_panel", args=[video.pk])).content.decode()
    said = "Saving accepts the ticked chips and rejects every chip left unticked."
    assert said in panel and panel.index(said) < panel.index('id="tag-chips"')


def test_the_type_aheads_match_count_heads_the_matches(client_as) -> None:  # type: ignore[no-untyped-def]
    """At 1440x900 with a full list of matches, "15 matches" at the list's foot sat under the tag screen's sticky
    "Submit tags and next" row, out of sight: the count now comes before the first match."""
    from moderation.tagging.services import tags_import

    tags_import(lines=[f"美{c}" for c in "一二三四五六七八九十"])
    body = client_as("moderator").get("/tags/search/", {"q": "美"}, HTTP_HX_REQUEST="true").content.decode()
    assert "10 matches" in body and body.index("data-search-count") < body.index("data-add-tag")


def test_the_retrain_name_box_shows_the_training_waiting_not_the_model_it_replaces(client_as) -> None:  # type: ignore[no-untyped-def]
    """Queued as "stage1-b", the dashboard drawn again read "stage1" (the active model) in the Name box beside the
    line saying "stage1-b" is queued: it looked as though the name typed had not been taken."""
    import re

    from django.urls import reverse

    from moderation.inference.cascade_models import CascadeModel, CascadeTraining

    CascadeModel.objects.create(
        name="stage1", artifact_path="models/stage1.joblib", escalate_threshold=0.04, is_active=True, trained_on=89
    )
    admin = client_as("admin")

    def name_box() -> str:
        form = admin.get(reverse("moderation:cascade")).content.decode().split('id="train-form"')[1]
        found = re.search(r'<input name="name" value="([^"]*)"', form)
        assert found is not None
        return found.group(1)

    assert name_box() == "stage1"
    training = CascadeTraining.objects.create(name="stage1-b")
    assert name_box() == "stage1-b"
    CascadeTraining.objects.filter(pk=training.pk).update(status="failed")
    assert name_box() == "stage1"
