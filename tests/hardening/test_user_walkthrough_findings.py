"""Findings of a walk through the workbench as each role (issue 22), each pinned by a test that
fails without its fix."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from annotation.models import CotCorrection
from moderation.errors import ModerationError
from moderation.inference.services import model_version_register
from moderation.integrations.services import integration_create
from moderation.labels.models import ItemLabel
from moderation.models import Decision, PolicyVersion, Review
from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy
from moderation.policies.taxonomy import LABEL_MAX_LENGTH, taxonomy_errors
from moderation.tagging.models import Tag
from moderation.tagging.services import tags_import
from tests.factories import DecidedVideoFactory, DecisionFactory
from tests.moderation.policies.test_policy_editor_views import _structured_post
from workbench.text import row_id

pytestmark = pytest.mark.django_db


# A tag key longer than the label columns was published, then every decision the baseline made with
# it failed ("DataError: value too long for type character varying(100)" on the video page) and an
# override naming it would have been a 500.
def test_the_label_key_limit_is_the_size_of_every_column_that_stores_a_label():
    columns = [
        Decision._meta.get_field("label"),
        Review._meta.get_field("label"),
        ItemLabel._meta.get_field("label"),
        CotCorrection._meta.get_field("label"),
    ]
    assert {column.max_length for column in columns} == {LABEL_MAX_LENGTH}  # type: ignore[attr-defined]


def test_a_tag_key_longer_than_a_label_column_is_refused_with_its_length():
    taxonomy = kuaimod_taxonomy()
    taxonomy[0]["tags"][0]["key"] = "k" * LABEL_MAX_LENGTH
    assert taxonomy_errors(taxonomy, safe_label=SAFE_LABEL) == []
    taxonomy[0]["tags"][0]["key"] = "k" * 5000
    (error,) = taxonomy_errors(taxonomy, safe_label=SAFE_LABEL)
    assert "5,000 characters" in error and f"at most {LABEL_MAX_LENGTH}" in error
    assert "k" * 41 not in error  # the key itself is cut short where the message names it


def test_the_editor_refuses_a_pasted_sentence_as_a_tag_key_and_saves_nothing(policy_version, client_as):
    client = client_as("policy_editor")
    data = _structured_post(policy_version.taxonomy)
    data["c0t0-key"] = "Criminal behaviour: " + "fraud, gambling, drugs, money laundering, scams " * 3
    response = client.post(reverse("moderation:policy_edit", args=[policy_version.policy.pk]), data)
    assert response.status_code == 400
    assert "a label key has at most 100" in response.content.decode()
    assert PolicyVersion.objects.count() == 1


# "²" and "１" pass str.isdigit(), then int() refused them: five forms answered a 500.
NOT_AN_ID = ["²", "１", "1²", "9" * 30]


@pytest.mark.parametrize("raw", NOT_AN_ID)
def test_row_id_reads_ascii_digits_only(raw):
    assert row_id(raw) is None
    assert row_id(" 42 ") == 42


def test_tag_submit_with_a_non_ascii_digit_id_is_a_404_or_ignored_not_a_500(client_as):
    video = DecidedVideoFactory()
    client = client_as("moderator")
    url = reverse("moderation:tag_submit", args=[video.pk])
    assert client.post(url, {"task": "²"}).status_code == 404
    response = client.post(url, {"tag": ["²", "１"], "shown": "²", "preselected": "²"})
    assert response.status_code == 200 and "0 accepted, 0 rejected, 0 added" in response.content.decode()


def test_a_non_ascii_digit_model_version_for_a_policy_is_a_message(client_as, policy_version):
    url = reverse("training:policy_model_choose", args=[policy_version.policy.pk])
    response = client_as("policy_editor").post(url, {"model_version": "²"}, follow=True)
    assert response.status_code == 200 and "That model version does not exist." in response.content.decode()


def test_a_non_ascii_digit_policy_for_a_promotion_is_a_message(client_as, policy_version):
    version = model_version_register(name="candidate", backend="evidence_baseline")
    url = reverse("training:model_promote", args=[version.pk])
    response = client_as("admin").post(url, {"policy": "²"}, follow=True)
    assert response.status_code == 200 and "That policy does not exist." in response.content.decode()


def test_a_non_ascii_digit_rate_limit_is_refused_with_the_expected_form(client_as):
    response = client_as("admin").post(reverse("moderation:integration_add"), {"name": "cms", "rate_limit": "²/min"})
    assert response.status_code == 400 and "is not like 120/min" in response.content.decode()
    with pytest.raises(ModerationError, match="not like 120/min"):
        integration_create(name="cms", rate_limit="１/min")


# Each click of "Save as new draft" made a version: a double click or a resent form left v2 and v3
# with the same content, and the version list grew a pile of identical drafts.
def test_the_same_edit_sent_twice_makes_one_draft(policy_version, client_as):
    client = client_as("policy_editor")
    url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    data = _structured_post(policy_version.taxonomy, notes="Add signal")
    data["c2t1-keywords"] += ", signal"
    first, second = client.post(url, data), client.post(url, data)
    drafts = list(PolicyVersion.objects.filter(status="draft"))
    assert len(drafts) == 1 and first["Location"] == second["Location"]
    # A different edit (or the same taxonomy with other notes) is a new draft.
    client.post(url, {**data, "notes": "Add signal (the messaging app)"})
    assert PolicyVersion.objects.filter(status="draft").count() == 2


# Saving a vocabulary row went back to "?q=<the search as typed>": a search with "&" or "#" lost
# its tail, and a long one made a redirect the server refused (414).
def test_saving_a_vocabulary_row_goes_back_to_the_same_search(client_as):
    tags_import(lines=["汤", "美食"])
    soup = Tag.objects.get(name="汤")
    client = client_as("policy_editor")
    url = reverse("moderation:tag_edit", args=[soup.pk])
    response = client.post(url, {"name": "汤", "aliases": "soup", "is_active": "on", "q": "汤 & soup#1"})
    assert response["Location"] == f"/tags/vocabulary/?q=%E6%B1%A4+%26+soup%231#tag-row-{soup.pk}"
    response = client.post(url, {"name": "汤", "aliases": "soup", "is_active": "on", "q": "x" * 5000})
    assert len(response["Location"]) < 400


# After signing in again in another tab (the CSRF token is renewed at sign-in), a form sent from an
# older tab got Django's bare "Forbidden (403) CSRF verification failed. More information is available
# with DEBUG=True." and what was typed there was gone.
def _stale_token_client(user):  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("home"))  # the browser holds a token now ...
    return client, "x" * 32  # ... and the page sends another one (from before the sign-in)


def test_a_form_from_before_a_sign_in_says_why_and_shows_the_typed_text(make_user):
    decision = DecisionFactory()
    client, old_token = _stale_token_client(make_user("labeler"))
    url = reverse("annotation:correction_edit", args=[decision.pk])
    typed = "The speech offers <b>cheap phones</b> for WeChat transfers;\nthe model missed it."
    response = client.post(
        url,
        {"csrfmiddlewaretoken": old_token, "base_revision": "0", "stage-analysis": typed, "action": "submit"},
        HTTP_REFERER=f"http://testserver{url}",
    )
    page = response.content.decode()
    assert response.status_code == 403 and "Not saved: this page was out of date" in page
    assert "opened before you last signed in" in page and f'href="{url}"' in page
    assert escape(typed) in page and "<b>cheap phones</b>" not in page  # shown for copying, escaped
    assert "action: <code>submit</code>" in page  # a button's value is one line, typed text a box
    assert old_token not in page and not CotCorrection.objects.exists()


def test_a_stale_sign_in_or_secret_form_never_echoes_the_password_or_secret(make_user):
    client, old_token = _stale_token_client(make_user("admin"))
    url = reverse("moderation:policy_list")
    response = client.post(
        url,
        {
            "csrfmiddlewaretoken": old_token,
            "username": "ana_reviewer_7",
            "password": "hunter2 typed",
            "secret": "whsec_abc 1",
        },
        HTTP_REFERER=f"http://testserver{url}",
    )
    page = response.content.decode()
    assert response.status_code == 403 and "out of date" in page and "ana_reviewer_7" in page  # other fields shown
    assert "hunter2" not in page and "whsec_abc" not in page


def test_a_cross_site_form_is_refused_without_echoing_what_it_sent(make_user):
    client, old_token = _stale_token_client(make_user("labeler"))
    response = client.post(
        reverse("moderation:policy_list"),
        {"csrfmiddlewaretoken": old_token, "notes": "text chosen by another site"},
        HTTP_ORIGIN="https://elsewhere.example",
    )
    assert response.status_code == 403 and "out of date" in response.content.decode()
    assert "text chosen by another site" not in response.content.decode()


def test_the_review_screens_scripts_get_the_reason_in_the_form_they_read(make_user):
    client, old_token = _stale_token_client(make_user("moderator"))
    url = reverse("moderation:review_submit", args=[1])
    background = client.post(url, {"verdict": "approve"}, HTTP_X_REVIEW_BACKGROUND="1", HTTP_X_CSRFTOKEN=old_token)
    assert background.status_code == 403 and background.json()["still_yours"] is True
    assert "opened before you last signed in" in background.json()["error"]
    htmx = client.post(url, {"verdict": "approve"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=old_token)
    assert htmx.status_code == 403 and htmx["Content-Type"].startswith("text/plain")
    assert "Reload the page" in htmx.content.decode()


# A form sent with more than a column holds (a pasted text, a script, a browser without maxlength) was a 500:
# the integration's name or rate limit ("value too long for type character varying(200)"), or a guide
# model "folder" longer than a file name may be ("OSError: File name too long").
def test_over_long_form_values_are_refused_with_a_message_not_a_500(client_as):
    from training.models import PreferenceDataset

    PreferenceDataset.objects.create(name="pairs", train_count=1)  # the job form is shown once a dataset exists
    admin = client_as("admin")
    url = reverse("moderation:integration_add")
    response = admin.post(url, {"name": "名" * 201})
    assert response.status_code == 400 and "at most 200 characters; this one has 201" in response.content.decode()
    response = admin.post(url, {"name": "cms", "rate_limit": "1/" + "s" * 30})
    assert response.status_code == 400 and "is not like 120/min" in response.content.decode()
    response = admin.post(reverse("training:job_start"), {"kind": "grpo", "guide_base_model": "长" * 400})
    assert response.status_code == 400 and "not a usable model folder" in response.content.decode()
    assert "<details open>" in response.content.decode()  # the error is in the folded settings: unfolded
    response = admin.post(reverse("training:job_start"), {"kind": "grpo", "guide_base_model": "m" * 501})
    assert response.status_code == 400 and "at most 500 characters" in response.content.decode()
    assert not admin.get(reverse("moderation:integration_list")).content.decode().count("名名名")


def test_the_out_of_date_form_page_never_links_to_another_site(make_user):
    """Its "Open the page again" took the Referer's path as it came: a same-site Referer whose path begins with
    "//" (http://workbench//elsewhere.example/x) made a link to another site (protocol-relative)."""
    client, old_token = _stale_token_client(make_user("labeler"))
    for path in ("//elsewhere.example/x", "/\\elsewhere.example/x"):
        response = client.post(
            reverse("moderation:policy_list"),
            {"csrfmiddlewaretoken": old_token, "notes": "typed"},
            HTTP_REFERER=f"http://testserver{path}",
        )
        page = response.content.decode()
        assert response.status_code == 403 and "elsewhere.example" not in page, path
        assert '<a href="/">Open the page again</a>' in page
