"""Django admin change forms choose a queue, policy, model version or user by search (autocomplete), as
they already chose videos, decisions and review items: a <select> listed every row of the table."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import reverse

from moderation.models import Decision, Policy, PolicyVersion, ReviewQueue, ReviewTask
from tests.factories import ModelVersionFactory, ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_every_editable_foreign_key_on_an_admin_form_is_chosen_by_search() -> None:
    plain_selects = []
    for model, model_admin in admin.site._registry.items():
        for field in model._meta.get_fields():
            if not isinstance(field, models.ForeignKey) or not field.editable:
                continue
            if field.name in (*model_admin.readonly_fields, *model_admin.autocomplete_fields):
                continue
            if field.name in model_admin.raw_id_fields:
                continue
            plain_selects.append(f"{model._meta.label}.{field.name}")
    assert plain_selects == []


def _search(client: Client, model: type[models.Model], field: str, term: str) -> list[str]:
    answer = client.get(
        reverse("admin:autocomplete"),
        {"app_label": model._meta.app_label, "model_name": model._meta.model_name, "field_name": field, "term": term},
    )
    assert answer.status_code == 200, (model, field)
    return [row["text"] for row in answer.json()["results"]]


def test_a_review_items_queue_and_claimant_are_searched_not_listed(policy_version: Any) -> None:
    queues = [ReviewQueue.objects.create(slug=f"q{n}", name=f"Queue {n}") for n in range(30)]
    users = [UserFactory(username=f"reviewer{n}") for n in range(30)]
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queues[3], claimed_by=users[4])
    ModelVersionFactory(name="grpo-job-9")
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    form = client.get(reverse("admin:moderation_reviewtask_change", args=[task.pk])).content.decode()
    for name in ("queue", "claimed_by"):
        select = form.split(f'name="{name}"')[0].rsplit("<select", 1)[1] + form.split(f'name="{name}"')[1]
        assert "admin-autocomplete" in select.split(">")[0], name
    assert "Queue 3" in form and "Queue 7" not in form  # only the chosen one, not all 30
    assert "reviewer4" in form and "reviewer7" not in form

    assert _search(client, ReviewTask, "queue", "q17") == ["Queue 17"]
    assert _search(client, ReviewTask, "claimed_by", "reviewer29") == ["reviewer29"]
    assert _search(client, ReviewQueue, "model_version", "grpo") == ["grpo-job-9"]
    assert _search(client, ReviewQueue, "policy", policy_version.policy.name) == [policy_version.policy.name]
    assert str(policy_version) in _search(client, Decision, "policy_version", policy_version.policy.name)
    assert _search(client, PolicyVersion, "policy", policy_version.policy.slug) == [policy_version.policy.name]
    assert _search(client, Policy, "serving_model", "job-9") == ["grpo-job-9"]


def test_the_admin_shows_a_policy_versions_state_but_publishing_stays_on_the_policy_screens(
    policy_version: Any,
) -> None:
    # policy_version_publish owns publishing (the stale-draft rule, the audit log): a ticked box in the
    # admin must not make a version active behind it.
    draft = PolicyVersion.objects.create(
        policy=policy_version.policy,
        number=policy_version.number + 1,
        status=PolicyVersion.Status.DRAFT,
        is_active=False,
        taxonomy=policy_version.taxonomy,
    )
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:moderation_policyversion_change", args=[draft.pk])
    form = client.get(url).content.decode()
    assert 'name="is_active"' not in form and 'name="status"' not in form

    client.post(url, {"is_active": "on", "status": PolicyVersion.Status.PUBLISHED, "policy": draft.policy_id})
    draft.refresh_from_db()
    policy_version.refresh_from_db()
    assert (draft.is_active, draft.status) == (False, PolicyVersion.Status.DRAFT)
    assert policy_version.is_active


def test_staff_with_the_admin_role_search_in_the_admin_and_only_view_what_they_search(
    policy_version: Any, make_user: Any
) -> None:
    """A non-superuser staff member with the admin role got a 403 from every admin search box (the search
    answers only those who may view the model searched); now the role views those models and no more."""
    from django.contrib.auth.models import Group

    queue = ReviewQueue.objects.create(slug="ads", name="Ads queue")
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queue)
    ModelVersionFactory(name="grpo-job-12")
    admin_role = make_user("admin", username="ops-lead", is_staff=True)
    client = Client()
    client.force_login(admin_role)

    assert _search(client, ReviewTask, "queue", "ads") == ["Ads queue"]
    assert _search(client, ReviewTask, "decision", str(task.decision_id)) != []
    assert _search(client, ReviewTask, "claimed_by", "ops-lead") == ["ops-lead"]
    assert _search(client, ReviewQueue, "model_version", "job-12") == ["grpo-job-12"]
    assert _search(client, PolicyVersion, "policy", policy_version.policy.slug) == [policy_version.policy.name]
    assert policy_version.policy.name in _search(client, Decision, "policy_version", policy_version.policy.name)[0]

    # View, not change: the searched models' pages open read-only and nothing can be added or saved there.
    page = client.get(reverse("admin:moderation_reviewqueue_change", args=[queue.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:moderation_reviewqueue_add")).status_code == 403
    held = Group.objects.get(name="admin").permissions.filter(content_type__app_label__in=["moderation", "auth"])
    model_level = {p.codename for p in held if p.codename.split("_")[0] in ("add", "change", "delete", "view")}
    assert model_level and all(code.startswith("view_") for code in model_level)

    # Staff without the role still get nothing from the search.
    other = Client()
    other.force_login(make_user("moderator", is_staff=True))
    answer = other.get(
        reverse("admin:autocomplete"),
        {"app_label": "moderation", "model_name": "reviewtask", "field_name": "queue", "term": "ads"},
    )
    assert answer.status_code == 403
