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
