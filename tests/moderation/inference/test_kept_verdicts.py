"""A retry after one policy's model failed reruns only that model.

A run decides a video under every auto-applied policy and saves the decisions and their routing in one
transaction, so when one policy's model fails nothing is saved. Before, the retry ran every policy's model again
(a VLM generation each); now the answers of the models that succeeded are kept (``KeptVerdict``) and reused for
the same input, and the retry's transaction still saves every decision and routes them together.
"""

from __future__ import annotations

from typing import Any

import pytest

from moderation.inference import services
from moderation.inference.services import decisions_create_for_video, model_version_register
from moderation.inference.tasks import run_inference
from moderation.media.models import Video
from moderation.models import Decision, KeptVerdict
from moderation.policies.models import Policy
from moderation.review.models import ReviewTask
from tests.factories import PolicyVersionFactory, VideoFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def minors(policy_version: Any) -> Any:
    serving = model_version_register(name="minors-model", backend="evidence_baseline", base_model="minors-vlm")
    policy = Policy.objects.create(slug="minors", name="Minors", auto_apply=True, serving_model=serving)
    return PolicyVersionFactory(policy=policy)


class Backends:
    """``get_backend`` that counts the models run per base model ("" is kuaimod's serving baseline) and fails
    the ones named in ``failing``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[str] = []
        self.failing: set[str] = set()
        real = services.get_backend

        def get_backend(name: str, **kwargs: Any) -> Any:
            base = kwargs.get("base_model", "")
            self.runs.append(base)
            if base in self.failing:
                raise RuntimeError(f"CUDA out of memory ({base})")
            return real(name, **kwargs)

        monkeypatch.setattr(services, "get_backend", get_backend)


def test_the_retry_runs_only_the_model_that_failed(policy_version: Any, minors: Any, monkeypatch: Any) -> None:
    backends = Backends(monkeypatch)
    backends.failing = {"minors-vlm"}
    video = VideoFactory(title="加微信 私聊")

    assert run_inference.run(video.pk) is None
    assert Video.objects.get(pk=video.pk).status == Video.Status.FAILED
    assert not Decision.objects.filter(video=video).exists()
    assert backends.runs == ["", "minors-vlm"]
    [kept] = KeptVerdict.objects.filter(video=video)
    assert kept.policy_version == policy_version

    backends.runs, backends.failing = [], set()
    decisions = decisions_create_for_video(video_id=video.pk)

    assert backends.runs == ["minors-vlm"]  # kuaimod's answer was kept
    assert {d.policy_version for d in decisions} == {policy_version, minors}
    kuaimod = next(d for d in decisions if d.policy_version == policy_version)
    assert kuaimod.label == "引导私下交易" and kuaimod.model_version.name == "evidence-baseline-v1"
    assert kuaimod.cot and kuaimod.latency_ms == kept.answer["latency_ms"]
    assert ReviewTask.objects.filter(decision__video=video).count() == 2  # both routed, in the one transaction
    assert not KeptVerdict.objects.exists()
    # A redelivered run runs no model at all.
    backends.runs = []
    assert decisions_create_for_video(video_id=video.pk) == decisions and backends.runs == []


def test_a_kept_answer_is_not_used_for_changed_content(policy_version: Any, minors: Any, monkeypatch: Any) -> None:
    """The title changed between the tries: what the model read is no longer what it would read now."""
    backends = Backends(monkeypatch)
    backends.failing = {"minors-vlm"}
    video = VideoFactory(title="加微信 私聊")
    assert run_inference.run(video.pk) is None
    Video.objects.filter(pk=video.pk).update(title="今天天气不错")

    backends.runs, backends.failing = [], set()
    decisions = decisions_create_for_video(video_id=video.pk)

    assert backends.runs == ["", "minors-vlm"]
    assert next(d for d in decisions if d.policy_version == policy_version).label == "正向"
    assert not KeptVerdict.objects.exists()  # the stale one went with the run that saved the decisions


def test_kept_answers_of_a_video_never_retried_are_purged_after_the_retention(
    policy_version: Any, minors: Any, monkeypatch: Any, settings: Any
) -> None:
    """A video whose failed run is never retried (given up, taken down) kept its models' answers for good. Beat's
    hourly purge deletes those older than KEPT_VERDICT_RETENTION_DAYS, leaves recent ones for their retry, and
    deleting again deletes nothing; the ops page says how long they are kept."""
    from datetime import timedelta

    from celery import Celery
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from moderation.inference.tasks import purge_kept_verdicts
    from tests.factories import UserFactory
    from workbench.queues import TASK_ROUTES, TaskQueue, configure_routing

    backends = Backends(monkeypatch)
    backends.failing = {"minors-vlm"}
    stale, fresh = VideoFactory(title="加微信 私聊"), VideoFactory(title="私聊 加微信")
    for video in (stale, fresh):
        run_inference.run(video.pk)
    assert KeptVerdict.objects.filter(video=stale).exists() and KeptVerdict.objects.filter(video=fresh).exists()
    settings.KEPT_VERDICT_RETENTION_DAYS = 3
    KeptVerdict.objects.filter(video=stale).update(created_at=timezone.now() - timedelta(days=3, minutes=1))
    KeptVerdict.objects.filter(video=fresh).update(created_at=timezone.now() - timedelta(days=2, hours=23))

    assert purge_kept_verdicts.run() == 1
    assert not KeptVerdict.objects.filter(video=stale).exists()
    assert KeptVerdict.objects.filter(video=fresh).exists()  # its retry still reruns only the failed model
    assert purge_kept_verdicts.run() == 0

    name = "moderation.inference.tasks.purge_kept_verdicts"
    assert TASK_ROUTES[name] is TaskQueue.DEFAULT
    app = Celery("routing-check", set_as_current=False)  # never the app shared tasks send through
    configure_routing(app)
    assert [e["schedule"] for e in app.conf.beat_schedule.values() if e["task"] == name] == [3600.0]

    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    html = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "1 model answer kept for the retry" in html and "deleted after 3 days" in html
