"""Findings of the walk of the less-walked screens in Chromium at 1440x900 as each role (tags queue and
keyboard flow, tag import, curation, cascade, training, evaluations, integrations, operations;
screenshots under /work/shots/walk_s30), each pinned by a client test that fails without its fix."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.review.services import review_claim_next
from moderation.tagging.models import Tag
from moderation.tagging.services import tags_import
from tests.factories import TagTaskFactory

pytestmark = pytest.mark.django_db


# Back after "Submit tags and next" reloaded the item just tagged with its chips and a live "Submit
# tags and next": nothing said it was done, and pressing it only sent the reviewer to the queue with
# "Already tagged". The screen of a done item now says who tagged it, with what, and offers Claim next.
def test_a_tagged_item_opened_again_says_it_is_done_instead_of_offering_its_form(make_user, policy_version):
    tags_import(lines=["美食", "旅游"])
    food, travel = Tag.objects.get(name="美食"), Tag.objects.get(name="旅游")
    task = TagTaskFactory(
        decision__policy_version=policy_version,
        suggestions=[(food, 0.8), (travel, 0.4)],
        suggestions__sources=["text"],
        suggestions__features={},
    )
    video = task.decision.video
    reviewer = make_user("moderator", username="rita")
    client = Client()
    client.force_login(reviewer)
    assert review_claim_next(user=reviewer, queue=task.queue) == task
    url = reverse("moderation:tag_task", args=[task.pk])
    assert "data-tags-submit" in client.get(url).content.decode()

    sent = client.post(
        reverse("moderation:tag_submit", args=[video.pk]),
        {"task": task.pk, "tag": [food.pk], "shown": [food.pk, travel.pk]},
    )
    assert sent.status_code == 302

    again = client.get(url).content.decode()  # Back, or the address opened again
    assert "data-tags-submit" not in again and "data-chip-key" not in again
    assert 'id="tags-recorded"' in again and "Already tagged by rita" in again
    assert '<span class="badge">美食</span>' in again and "旅游" not in again.split('id="tags-recorded"')[1][:400]
    assert reverse("moderation:tag_claim_next") in again


# A cascade model name of 300 letters was refused with "may use letters, digits, '.', '_' and '-' only":
# the length was the problem, which the message did not say.
# (The refusal redirects back to the dashboard, which keeps the typed values in the retrain form and the reason
# beside it, as the dashboard's other forms do.)
def test_a_too_long_cascade_model_name_is_refused_for_its_length(client_as):
    admin = client_as("admin")

    url = reverse("moderation:cascade_train")
    response = admin.post(url, {"name": "x" * 300, "target_accuracy": "0.92"}, follow=True)

    assert response.redirect_chain == [(reverse("moderation:cascade"), 302)]
    assert "A cascade model name is at most 100 characters; this one has 300." in response.content.decode()
    dashed = admin.post(url, {"name": "-x", "target_accuracy": "0.92"}, follow=True)
    assert "starts with a letter or a digit" in dashed.content.decode()


# "Compare A and B" with one run or none chosen was a "Not found" page whose only link went to the start
# page, and the same run as A and B was compared with itself ("grpo-job-1 vs grpo-job-1", all zeros).
def test_comparing_without_two_different_evaluations_goes_back_to_the_list_with_the_reason(client_as, policy_version):
    from tests.factories import ModelVersionFactory
    from training.models import EvaluationRun

    run = EvaluationRun.objects.create(
        model_version=ModelVersionFactory(), policy_version=policy_version, eval_set_key="gold"
    )
    admin = client_as("admin")
    url = reverse("training:evaluation_compare")

    for params, said in (
        ({}, "Pick two evaluations to compare: one in column A and one in column B."),
        ({"a": run.pk}, "Pick two evaluations to compare"),
        ({"a": run.pk, "b": "²"}, "Pick two evaluations to compare"),
        ({"a": run.pk, "b": run.pk}, f"Evaluation {run.pk} is both A and B: pick two different evaluations"),
    ):
        response = admin.get(url, params)
        assert response.status_code == 302 and response["Location"] == reverse("training:model_list") + "#evaluations"
        page = admin.get(response["Location"]).content.decode()
        assert said in page and 'id="evaluations"' in page


# A webhook address of 1,001 to 2,048 characters passed the URL validator and overflowed the column: a
# 500. One with a user name and password (https://user:pw@host/...) was saved and then shown in clear on
# the integrations screen to every admin.
def test_a_webhook_address_too_long_or_carrying_a_password_is_refused_beside_its_form(client_as):
    from moderation.integrations.models import WebhookEndpoint
    from moderation.integrations.services import integration_create

    integration, _token = integration_create(name="shop-app", rate_limit="")
    admin = client_as("admin")
    url = reverse("moderation:webhook_endpoint_add", args=[integration.pk])

    long = admin.post(url, {"url": "https://example.com/" + "a" * 1500, "event_types": ["review.completed"]})
    secret = admin.post(url, {"url": "https://user:pw@example.com/h", "event_types": ["review.completed"]})

    assert long.status_code == 400
    assert "A webhook address has at most 1000 characters; this one has 1520." in long.content.decode()
    assert secret.status_code == 400
    assert "A webhook address may not carry a user name or password" in secret.content.decode()
    assert not WebhookEndpoint.objects.exists()


# A too-long alias typed on the vocabulary screen read "Alias alias “aaa…”: 10,000 characters; …".
def test_a_refused_alias_is_named_once(client_as):
    tags_import(lines=["汤"])
    soup = Tag.objects.get(name="汤")
    editor = client_as("policy_editor")

    page = editor.post(
        reverse("moderation:tag_edit", args=[soup.pk]), {"name": "汤", "aliases": "a" * 150}, follow=True
    ).content.decode()

    assert "Alias “aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa”: 150 characters; a tag name has at most 100." in page
    assert "Alias alias" not in page


# An endpoint saved before such addresses were refused still showed its password on both screens.
def test_an_older_webhook_address_with_a_password_is_shown_masked(client_as):
    from moderation.integrations.models import WebhookEndpoint
    from moderation.integrations.services import integration_create

    integration, _token = integration_create(name="shop-app", rate_limit="")
    endpoint = WebhookEndpoint.objects.create(
        integration=integration, url="https://hook:s3cret-pw@example.com:8443/h?x=1", secret="k", event_types=["x"]
    )
    admin = client_as("admin")

    for page in (reverse("moderation:integration_list"), reverse("moderation:webhook_endpoint", args=[endpoint.pk])):
        html = admin.get(page).content.decode()
        assert "s3cret-pw" not in html, page
        assert "https://hook:•••@example.com:8443/h?x=1" in html, page
    assert endpoint.url.startswith("https://hook:s3cret-pw@")  # still delivered to as it was saved


# Curation: "Make alias" with the "alias of" field emptied made the phrase an alias of its nearest tag
# without a word, and "Add tag" with a blank name said "Tag name: blank line." (an import's wording).
def test_an_emptied_curation_field_is_refused_not_replaced_by_a_default(client_as):
    from moderation.tagging.models import TagProposal

    tags_import(lines=["美食"])
    food = Tag.objects.get(name="美食")
    proposal = TagProposal.objects.create(name="番茄炒蛋", key="番茄炒蛋", nearest_tag=food, nearest_cosine=0.7)
    editor = client_as("policy_editor")
    url = reverse("moderation:tag_proposal_decide", args=[proposal.pk])

    merged = editor.post(url, {"action": "merge", "target": " "}, HTTP_HX_REQUEST="true").content.decode()
    named = editor.post(url, {"action": "accept", "name": "  ", "parent": ""}, HTTP_HX_REQUEST="true")

    assert "Alias of: nothing typed; type the tag this phrase is another word for." in merged
    assert "Tag name: nothing typed; type the name the new tag gets." in named.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == TagProposal.Status.PENDING and food.aliases == []
    row = editor.post(reverse("moderation:tag_edit", args=[food.pk]), {"name": " ", "is_active": "on"}, follow=True)
    assert "“美食” was not saved: Tag name: nothing typed." in row.content.decode()  # the vocabulary row too


# The tag ranker's line read "trained … from 13 events on 1 videos".
def test_the_ranker_line_counts_one_video_in_the_singular(client_as):
    from moderation.tagging.models import TagRanker

    TagRanker.objects.create(version=1, kind=TagRanker.Kind.WEIGHTED, n_events=1, n_videos=1, is_active=True)

    page = client_as("moderator").get(reverse("moderation:tag_ranker")).content.decode()

    assert "from 1 event on 1 video" in page and "1 videos" not in page


# A reproduction pair opened again after its verdict (Back, the address) said "Recorded by …" and
# offered nothing else: no way on but the small "back to pairs" link; the verdict keys' hints wrapped
# away from their buttons.
def test_a_decided_pair_offers_claim_next_with_its_key(client_as):
    from tests.moderation.reproduction.test_pair_review import make_pair

    pair = make_pair(0.9)
    client = client_as("moderator")
    claimed = client.post(reverse("moderation:repro_claim_next"))
    assert 'class="verdict-keys"' in client.get(claimed.url).content.decode()
    client.post(reverse("moderation:repro_submit", args=[pair.pk]), {"verdict": "unrelated"})

    page = client.get(reverse("moderation:repro_pair", args=[pair.pk])).content.decode()

    assert "Recorded by" in page
    verdict = page.split('id="verdict"')[1].split("</section>")[0]
    assert reverse("moderation:repro_claim_next") in verdict and 'data-hotkey="n"' in verdict


# The threshold's refusal named a number the admin did not type ("got 2.0" for 2, "got inf" for 1e400),
# and a target of 99.9 % was confirmed as "at least 100%".
def test_cascade_refusals_name_what_was_typed_and_a_target_keeps_its_tenth(client_as):
    from moderation.inference.stage1.routing import accuracy_percent

    admin = client_as("admin")

    for typed in ("2", "1e400", "-1"):
        page = admin.post(reverse("moderation:cascade_threshold"), {"threshold": typed}, follow=True).content.decode()
        assert f"The escalation threshold must be between 0 and 1; “{typed}” is not." in page
        assert "(got" not in page
    assert [accuracy_percent(v) for v in (0.999, 0.92, 1.0, 0.5)] == ["99.9%", "92%", "100%", "50%"]
