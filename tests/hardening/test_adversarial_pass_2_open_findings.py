"""Findings of the second adversarial pass left open at first (a policy's model chosen outside the release
gate, a Tag2CoT task locked by looking at it, an unbounded tag set description, the Label Studio export
offering restricted queues), each pinned by a test that fails without its fix."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Tag2CotTask
from moderation.inference.services import model_version_register, model_version_serving
from moderation.models import AuditEvent
from moderation.review.models import ReviewQueue, ReviewTask
from moderation.tagging.models import TagSet
from tests.factories import DecisionFactory
from training.models import EvaluationRun

pytestmark = pytest.mark.django_db


def _evaluated(version, policy_version, accuracy):  # type: ignore[no-untyped-def]
    EvaluationRun.objects.create(
        model_version=version, policy_version=policy_version, eval_set_key=f"gold:policy_version={policy_version.pk}",
        status=EvaluationRun.Status.SUCCEEDED, metrics={"binary_accuracy": accuracy},
    )  # fmt: skip
    return version


def test_the_policy_pages_model_choice_goes_through_the_release_gate_and_is_audited(client_as, policy_version):
    """A policy editor set any model version (never evaluated, or worse than the serving one) for a policy
    from its page, with no audit event; the gated, audited promotion could be skipped that way."""
    policy = policy_version.policy
    _evaluated(model_version_serving(), policy_version, 0.5)
    untested = model_version_register(name="untested", backend="evidence_baseline")
    better = _evaluated(model_version_register(name="better", backend="evidence_baseline"), policy_version, 0.9)
    editor = client_as("policy_editor")
    page = editor.get(reverse("moderation:policy_detail", args=[policy.pk])).content.decode()
    [action] = re.findall(
        r'<form method="post" action="([^"]+)"[^>]*>(?:(?!</form>).)*name="model_version"', page, re.S
    )

    refused = editor.post(action, {"model_version": untested.pk}, follow=True)

    assert refused.status_code == 200
    assert "Promotion refused: untested has no finished evaluation" in refused.content.decode()
    policy.refresh_from_db()
    assert policy.serving_model is None
    assert AuditEvent.objects.filter(action="model_promotion_refused", object_id=str(untested.pk)).exists()

    assert "will use better" in editor.post(action, {"model_version": better.pk}, follow=True).content.decode()
    policy.refresh_from_db()
    assert policy.serving_model == better
    promoted = AuditEvent.objects.get(action="model_promoted", object_id=str(better.pk))
    assert promoted.payload["scope"] == policy.slug and promoted.actor_name

    editor.post(action, {"model_version": ""})  # back to the globally serving model: a rollback, audited
    policy.refresh_from_db()
    assert policy.serving_model is None
    assert AuditEvent.objects.get(action="model_policy_reset").payload["previous"] == "better"


def test_opening_a_tag2cot_task_claims_nothing_its_button_takes_a_lease(policy_version, make_user, settings):
    """A GET of the task's page assigned it to the viewer for good: a cross-site link, or a look, locked it."""
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    task = Tag2CotTask.objects.create(video=decision.video, decision=decision, policy_version=policy_version,
                                      target_label="引导私下交易")  # fmt: skip
    alice, bob = make_user("labeler"), make_user("labeler")
    ca, cb = Client(), Client()
    ca.force_login(alice)
    cb.force_login(bob)
    page_url = reverse("annotation:tag2cot_write", args=[task.pk])
    claim = reverse("annotation:tag2cot_claim", args=[task.pk])

    page = ca.get(page_url).content.decode()

    task.refresh_from_db()
    assert task.assigned_to is None and not AuditEvent.objects.filter(object_type="tag2cottask").exists()
    assert f'action="{claim}"' in page and "Write this reasoning</button>" in page
    assert "Save reasoning</button>" not in page  # not writable until taken

    before = timezone.now()
    assert ca.post(claim).status_code == 302
    task.refresh_from_db()
    assert task.assigned_to == alice and "Save reasoning</button>" in ca.get(page_url).content.decode()
    assert task.lease_expires_at >= before + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)
    assert "is writing this reasoning" in cb.post(claim, follow=True).content.decode()
    task.refresh_from_db()
    assert task.assigned_to == alice

    Tag2CotTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    cb.post(claim)  # a lapsed lease: another labeler may take it over
    task.refresh_from_db()
    assert task.assigned_to == bob
    cb.post(reverse("annotation:tag2cot_release", args=[task.pk]))
    task.refresh_from_db()
    assert task.assigned_to is None and task.lease_expires_at is None
    ca.post(claim)
    ca.post(reverse("logout"))  # logging out frees it, as review items are freed
    task.refresh_from_db()
    assert task.assigned_to is None
    assert list(AuditEvent.objects.filter(object_type="tag2cottask").order_by("pk").values_list("action", flat=True)) == [
        "tag2cot_claim", "tag2cot_claim", "tag2cot_release", "tag2cot_claim", "tag2cot_release",
    ]  # fmt: skip


def test_a_tag_set_description_is_refused_past_its_limit_with_the_limit(client_as):
    """A tag set's description had no limit: a megabyte was saved, and shown on the vocabulary screen."""
    editor = client_as("policy_editor")
    form = {"create": "1", "slug": "ads", "name": "Ads", "show_threshold": "0.05", "preselect_threshold": "0.9",
            "max_suggestions": "12", "tags": ""}  # fmt: skip

    refused = editor.post(reverse("moderation:tag_set_save"), {**form, "description": "x" * 1_000_000})

    assert refused.status_code == 400
    assert "The description is 1,000,000 characters long; it may hold at most 500." in refused.content.decode()
    assert not TagSet.objects.filter(slug="ads").exists()
    assert editor.post(reverse("moderation:tag_set_save"), {**form, "description": "é" * 500}).status_code == 302
    assert TagSet.objects.get(slug="ads").description == "é" * 500
    page = editor.get(reverse("moderation:tag_vocabulary")).content.decode()
    assert len(re.findall(r'name="description"[^>]*maxlength="500"', page)) == 2  # the new set's and its own


def test_the_label_studio_export_offers_only_the_queues_the_user_may_see(client_as, make_user, policy_version):
    """The export's queue list held every moderation queue: a labeler downloaded the open items (titles,
    videos, the model's label and reasoning) of group-restricted and inactive queues."""
    experts = Group.objects.create(name="experts")
    queues = {
        slug: ReviewQueue.objects.create(slug=slug, name=slug, is_active=slug != "ls-inactive")
        for slug in ("ls-open", "ls-restricted", "ls-inactive")
    }
    queues["ls-restricted"].allowed_groups.add(experts)
    for queue in queues.values():
        ReviewTask.objects.create(decision=DecisionFactory(policy_version=policy_version), queue=queue)
    url = reverse("annotation:labelstudio_export")
    labeler = client_as("labeler")
    expert = make_user("labeler")
    expert.groups.add(experts)
    expert_client = Client()
    expert_client.force_login(User.objects.get(pk=expert.pk))

    offered = set(re.findall(r'<option value="(ls-[a-z-]+)"', labeler.get(url).content.decode()))
    params = {"what": "queue", "queue-base_url": "http://wb.test", "download": "tasks"}
    restricted = labeler.get(url, {**params, "queue-queue": "ls-restricted"})
    inactive = labeler.get(url, {**params, "queue-queue": "ls-inactive"})

    assert offered == {"ls-open"}
    assert restricted.status_code == 400 and "That review queue does not exist" in restricted.content.decode()
    assert inactive.status_code == 400 and "That review queue does not exist" in inactive.content.decode()
    assert labeler.get(url, {**params, "queue-queue": "ls-open"}).status_code == 200
    assert set(re.findall(r'<option value="(ls-[a-z-]+)"', expert_client.get(url).content.decode())) == {
        "ls-open", "ls-restricted",
    }  # fmt: skip
    assert expert_client.get(url, {**params, "queue-queue": "ls-restricted"}).status_code == 200
