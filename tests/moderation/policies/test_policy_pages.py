"""Read-only policy pages: every signed-in user can read the taxonomy."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["moderator", "labeler", "policy_editor", None])
def test_every_signed_in_user_reads_the_taxonomy(policy_version, client_as, role):
    client = client_as(role)
    listing = client.get(reverse("moderation:policy_list")).content.decode()
    assert reverse("moderation:policy_detail", args=[policy_version.policy.pk]) in listing
    assert f"v{policy_version.number}" in listing

    resp = client.get(reverse("moderation:policy_detail", args=[policy_version.policy.pk]))
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "<td>引导私下交易</td>" in html and "<td>Steering users to private deals</td>" in html
    assert "加微信" in html and 'rowspan="4"' in html  # commercial behaviour has four tags
    edit_url = reverse("moderation:policy_edit", args=[policy_version.policy.pk])
    assert (f'href="{edit_url}"' in html) == (role == "policy_editor")


def test_anonymous_is_sent_to_login(policy_version):
    resp = Client().get(reverse("moderation:policy_detail", args=[policy_version.policy.pk]))
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")


def test_unknown_policy_is_404(client_as):
    assert client_as("moderator").get(reverse("moderation:policy_detail", args=[999])).status_code == 404


def test_policy_editor_chooses_the_model_for_a_policy_and_others_cannot(client_as, policy_version):
    from moderation.inference.services import model_version_register, model_version_serving
    from training.models import EvaluationRun

    candidate = model_version_register(name="candidate", backend="evidence_baseline")
    key = f"gold:policy_version={policy_version.pk}"
    for version, accuracy in ((model_version_serving(), 0.5), (candidate, 0.9)):
        EvaluationRun.objects.create(
            model_version=version, policy_version=policy_version, eval_set_key=key, status="succeeded",
            metrics={"binary_accuracy": accuracy},
        )  # fmt: skip
    policy = policy_version.policy
    url = reverse("training:policy_model_choose", args=[policy.pk])

    assert client_as("moderator").post(url, {"model_version": candidate.pk}).status_code == 403
    response = client_as("policy_editor").post(url, {"model_version": candidate.pk})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.serving_model == candidate
    assert model_version_serving(policy=policy) == candidate
    page = client_as("policy_editor").get(f"/policies/{policy.pk}/").content.decode()
    assert "candidate" in page and f'action="{url}"' in page

    client_as("admin").post(url, {"model_version": ""})
    policy.refresh_from_db()
    assert policy.serving_model is None
    assert client_as("admin").post(url, {"model_version": "999999"}).status_code == 302


def test_the_policy_pages_model_choice_names_the_global_model_and_says_who_can_evaluate(client_as, policy_version):
    """An editor saw "the globally serving model" without its name; choosing that very model read "Promotion
    refused: … is already serving"; a refusal for a missing evaluation told them to evaluate, which they cannot."""
    from moderation.inference.services import model_version_register, model_version_serving
    from training.models import EvaluationRun

    policy, serving = policy_version.policy, model_version_serving()
    model_version_register(name="grpo-flat", backend="transformers", metrics={"no_learning_signal": True})
    candidate = model_version_register(name="candidate", backend="evidence_baseline")
    EvaluationRun.objects.create(
        model_version=candidate, policy_version=policy_version, eval_set_key=f"gold:policy_version={policy_version.pk}",
        status="succeeded", metrics={"binary_accuracy": 0.9},
    )  # fmt: skip
    editor, url = client_as("policy_editor"), reverse("training:policy_model_choose", args=[policy.pk])

    page = editor.get(reverse("moderation:policy_detail", args=[policy.pk])).content.decode()
    assert f"the globally serving model, {serving.name}</strong>" in page
    assert f'<option value="">the globally serving model ({serving.name})</option>' in page
    assert f"{serving.name} · Evidence/rule baseline (not a VLM) · serving globally</option>" in page
    assert "grpo-flat · transformers · learned nothing</option>" in page

    same = editor.post(url, {"model_version": serving.pk}, follow=True).content.decode()
    assert f"{serving.name} already makes new decisions under {policy.name} as the globally serving model." in same
    missing = editor.post(url, {"model_version": candidate.pk}, follow=True).content.decode()
    assert "has no evaluation on the same set" in missing
    assert "Evaluations are started by an admin on Training → Model versions." in missing
    by_admin = client_as("admin").post(url, {"model_version": candidate.pk}, follow=True).content.decode()
    assert "has no evaluation on the same set" in by_admin and "started by an admin" not in by_admin


def test_a_refused_model_choice_keeps_the_chosen_model_selected(client_as, policy_version):  # type: ignore[no-untyped-def]
    """After a refusal the dropdown showed the globally serving model again: the user's choice was lost."""
    from moderation.inference.services import model_version_register

    policy = policy_version.policy
    candidate = model_version_register(name="candidate", backend="evidence_baseline")  # no evaluation: refused
    url = reverse("training:policy_model_choose", args=[policy.pk])
    response = client_as("policy_editor").post(url, {"model_version": candidate.pk}, follow=True)
    page = response.content.decode()
    assert "Promotion refused: candidate has no finished evaluation" in page
    assert f'<option value="{candidate.pk}" selected>candidate · ' in page
    assert page.count(" selected>") == 1
    policy.refresh_from_db()
    assert policy.serving_model is None


@pytest.mark.django_db
def test_a_versions_page_says_how_its_number_and_its_address_differ(client_as):
    """Walked (hwalk15 row 17): the page said "v2" while its address was /policies/versions/3/ (the record's number,
    counted across every policy): the page now names both, and says nothing where they agree."""
    from tests.factories import PolicyFactory, PolicyVersionFactory

    PolicyVersionFactory(policy=PolicyFactory(slug="other", name="Other policy"), number=1)
    version = PolicyVersionFactory(number=1)
    assert version.pk != version.number
    html = client_as("policy_editor").get(reverse("moderation:policy_version", args=[version.pk])).content.decode()
    assert 'id="version-record"' in html
    assert f"v1 is this policy's version number; the <b>{version.pk}</b> in this page's address" in html
    same = PolicyVersionFactory(policy=PolicyFactory(slug="third", name="Third"), number=version.pk + 1)
    assert same.pk == same.number  # the next record: its number and address agree
    html = client_as("policy_editor").get(reverse("moderation:policy_version", args=[same.pk])).content.decode()
    assert 'id="version-record"' not in html
