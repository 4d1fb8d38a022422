"""A queue may name the model whose verdict its reviewers see (ReviewQueue.model_version)."""

from __future__ import annotations

import time

import pytest

from moderation.inference.services import decision_create_for_video, model_version_register
from moderation.models import Decision
from moderation.review.models import AuditEvent, ReviewQueue, ReviewTask
from moderation.review.services import review_queue_decision
from tests.factories import VideoFactory


def _second_opinion_queue(policy_version, model_version):  # type: ignore[no-untyped-def]
    return ReviewQueue.objects.create(
        name="Second opinion", slug="second-opinion", policy=policy_version.policy, model_version=model_version
    )


@pytest.mark.django_db
def test_a_queue_reviews_the_decision_of_the_model_it_names(policy_version, django_capture_on_commit_callbacks):
    other = model_version_register(name="second-opinion-model", backend="evidence_baseline")
    queue = _second_opinion_queue(policy_version, other)
    video = VideoFactory(title="加微信 私聊")

    with django_capture_on_commit_callbacks() as callbacks:
        first = decision_create_for_video(video_id=video.pk)

    assert first.model_version.name == "evidence-baseline-v1"  # the policy's serving model
    assert not ReviewTask.objects.filter(queue=queue).exists()  # not the verdict this queue reviews
    assert len(callbacks) == 3  # the queue's model is asked (and the shadow hook, the outbox dispatch)
    routed = AuditEvent.objects.get(action="decision.routed", object_id=str(first.pk))
    assert routed.payload["queues_for_other_models"] == ["second-opinion"]

    second = review_queue_decision(decision_id=first.pk, queue_id=queue.pk)

    assert second is not None and second.pk != first.pk
    assert (second.model_version, second.policy_version, second.video) == (other, first.policy_version, video)
    [task] = ReviewTask.objects.filter(queue=queue)
    assert task.decision == second
    # redelivered: no second inference, no second task
    assert review_queue_decision(decision_id=first.pk, queue_id=queue.pk) == second
    assert ReviewTask.objects.filter(queue=queue).count() == 1
    assert Decision.objects.filter(video=video).count() == 2


@pytest.mark.django_db
def test_when_the_queue_model_fails_the_queue_still_gets_the_item(policy_version):
    broken = model_version_register(name="broken", backend="transformers", base_model="/nonexistent/model")
    queue = _second_opinion_queue(policy_version, broken)
    first = decision_create_for_video(video_id=VideoFactory(title="加微信").pk)

    assert review_queue_decision(decision_id=first.pk, queue_id=queue.pk) == first
    assert ReviewTask.objects.get(queue=queue).decision == first  # reviewed under its first verdict, not lost

    queue.model_version = None  # edited after its item was made: nothing more to do
    queue.save()
    assert review_queue_decision(decision_id=first.pk, queue_id=queue.pk) == first
    assert ReviewTask.objects.filter(queue=queue).count() == 1


@pytest.mark.integration
def test_the_worker_decides_for_the_queue_through_the_broker(celery_worker, policy_version):
    other = model_version_register(name="second-opinion-model", backend="evidence_baseline")
    queue = _second_opinion_queue(policy_version, other)
    first = decision_create_for_video(video_id=VideoFactory(title="加微信 私聊").pk)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ReviewTask.objects.filter(queue=queue).exists():
        time.sleep(0.1)
    [task] = ReviewTask.objects.filter(queue=queue)
    assert task.decision.model_version == other and task.decision.video_id == first.video_id
