"""The periodic sweep of distinct vectors no video holds any more: a batch of keys per step, on real PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from moderation.media.models import Video
from moderation.reproduction import services, tasks
from moderation.reproduction.models import PictureVector, TranscriptVector, VectorSweep
from tests.factories import VideoFactory
from workbench.queues import TASK_ROUTES, TaskQueue, configure_routing

pytestmark = pytest.mark.django_db


def _unit(rng: np.random.Generator, n: int) -> list[float]:
    v = rng.normal(size=n)
    return [float(x) for x in v / np.linalg.norm(v)]


def test_the_sweep_drops_what_no_video_holds_a_batch_at_a_time_and_a_second_pass_finds_nothing() -> None:
    rng = np.random.default_rng(30)
    kept = [VideoFactory(text_embedding=_unit(rng, 384), visual_embedding=_unit(rng, 512)) for _ in range(3)]
    gone = [VideoFactory(text_embedding=_unit(rng, 384), visual_embedding=_unit(rng, 512)) for _ in range(3)]
    rewritten = kept[0]
    old_text = Video.objects.get(pk=rewritten.pk).text_key
    rewritten.text_embedding = _unit(rng, 384)  # embedded again: its old transcript vector is no one's
    rewritten.save()
    Video.objects.filter(pk__in=[v.pk for v in gone]).delete()  # taken down: 3 transcripts and 3 pictures
    held_text = set(Video.objects.values_list("text_key", flat=True))
    held_picture = set(Video.objects.values_list("visual_key", flat=True))
    assert TranscriptVector.objects.count() == 7 and PictureVector.objects.count() == 6

    swept = [services.distinct_vectors_sweep_step(batch=2) for _ in range(4)]  # 7 keys, 2 a step: a whole pass
    assert sum(swept) == 4 + 3 and swept[0] <= 4  # never more than a batch of each table per step
    assert set(TranscriptVector.objects.values_list("key", flat=True)) == held_text
    assert set(PictureVector.objects.values_list("key", flat=True)) == held_picture
    assert old_text not in held_text
    state = VectorSweep.objects.get(table="moderation_transcriptvector")
    assert state.after is None  # the pass reached the table's end: the next one starts over

    # Idempotent: a second pass (or a redelivered step) drops nothing; the neighbours still find every video.
    assert sum(services.distinct_vectors_sweep_step(batch=2) for _ in range(4)) == 0
    assert TranscriptVector.objects.count() == 3 and PictureVector.objects.count() == 3


def test_a_vector_dropped_while_a_video_took_it_is_registered_again_by_the_next_step() -> None:
    rng = np.random.default_rng(31)
    video = VideoFactory(text_embedding=_unit(rng, 384), visual_embedding=_unit(rng, 512))
    key = Video.objects.get(pk=video.pk).text_key
    # The race: a step dropped the vector (no committed video held it yet) while this video's write, in flight, found
    # it still there; the video committed after the step. The step recorded what it dropped.
    with connection.cursor() as cur:
        cur.execute("DELETE FROM moderation_transcriptvector WHERE key = %s", [key])
    VectorSweep.objects.create(table="moderation_transcriptvector", dropped=[key])

    assert tasks.sweep_distinct_vectors() == 0  # the beat task: one step
    assert TranscriptVector.objects.filter(key=key).exists()
    assert VectorSweep.objects.get(table="moderation_transcriptvector").dropped == []


def test_the_sweep_runs_on_the_default_queue_every_five_minutes() -> None:
    from celery import Celery

    name = "moderation.reproduction.tasks.sweep_distinct_vectors"
    assert TASK_ROUTES[name] is TaskQueue.DEFAULT
    app = Celery("routing-check", set_as_current=False)  # never the app shared tasks send through
    configure_routing(app)
    assert app.amqp.router.route({}, name)["queue"].name == "default"
    assert [e["schedule"] for e in app.conf.beat_schedule.values() if e["task"] == name] == [300.0]
