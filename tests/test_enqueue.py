"""One way to queue work: ``workbench.queues.enqueue`` — after the commit, by the routing table —
and the hand-offs up the layers are signals the upper app subscribes to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from moderation.signals import decision_recorded, feedback_received, video_decided, video_ready
from tests.broker import broker_client
from workbench.queues import TASK_ROUTES, enqueue

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_enqueue_sends_after_the_commit_to_the_routed_queue(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    broker = broker_client()
    queue = TASK_ROUTES["moderation.tagging.tasks.embed_tags"].value
    before = broker.llen(queue)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueue("moderation.tagging.tasks.embed_tags")
        assert broker.llen(queue) == before  # nothing leaves before the commit
    assert len(callbacks) == 1
    callbacks[0]()
    assert broker.llen(queue) == before + 1
    message = json.loads(broker.lindex(queue, 0))
    assert message["headers"]["task"] == "moderation.tagging.tasks.embed_tags"
    broker.lpop(queue)


def test_a_task_missing_from_the_routing_table_is_refused(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(ValueError, match="routed"):
        enqueue("moderation.media.tasks.no_such_task", 1)
    assert callbacks == []


def test_hand_offs_up_the_layers_are_subscribed_by_the_upper_app(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        video_ready.send(sender=None, video_id=1)
        decision_recorded.send(sender=None, decision_id=2)
        feedback_received.send(sender=None, video_ids=[3, 4])
        video_decided.send(sender=None, video_id=5)
    sent = [(cb.args[0], cb.args[2], cb.args[3]) for cb in callbacks]  # enqueue's partial: task, queue, args, kwargs
    assert sent == [
        ("moderation.inference.tasks.run_inference", [1], {}),
        ("moderation.reproduction.tasks.find_candidates", [1], {}),
        ("training.tasks.run_shadow_decision", [2], {}),
        ("annotation.tasks.evaluate_disagreements", [], {"video_ids": [3, 4]}),
        ("moderation.tagging.tasks.generate_tag_candidates", [5], {}),
    ]


def test_no_code_queues_a_task_any_other_way():
    """``.delay``, ``.apply_async`` and ``send_task`` appear only inside the helper."""
    pattern = re.compile(r"\.(delay|delay_on_commit|apply_async|send_task)\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in ("workbench", "moderation", "annotation", "training")
        for path in (ROOT / package).rglob("*.py")
        if path != ROOT / "workbench" / "queues.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
    # and no task is named by a string that is not in the routing table
    names = {
        m.group(1)
        for package in ("moderation", "annotation", "training")
        for path in (ROOT / package).rglob("*.py")
        for m in re.finditer(r"enqueue\(\s*\"([\w.]+)\"", path.read_text(encoding="utf-8"))
    }
    assert names and names <= set(TASK_ROUTES)
