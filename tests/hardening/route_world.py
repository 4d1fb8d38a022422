"""Real rows for every route of ours that names an object, so the all-routes scans open each such page on a row that
exists and its view runs (a scan of 404s proves nothing about the view): ``tests/hardening/test_get_writes_nothing.py``
(a GET writes nothing) and ``tests/hardening/test_route_matrix.py``'s pass on real objects (each role's answer).

Every object is made at one id (``PK``), so a URL's ``<int:pk>`` names a real row whatever the route; a route whose row
shares a table with another route's (a tags-queue item is a review task, as the review screen's item is) or that is
not named by an id (a media file's path) has its own URL arguments in ``RouteWorld.kwargs``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, reverse

from tests.factories import (
    AdjudicationFactory,
    DecidedVideoFactory,
    DecisionFactory,
    ModelVersionFactory,
    PolicyFactory,
    PolicyVersionFactory,
    PreferenceDatasetFactory,
    ReproCandidateFactory,
    ReviewTaskFactory,
    SegmentFactory,
    TagProposalFactory,
    TagTaskFactory,
    VideoFactory,
)

PK = 777
# Routes a scan may reach only as a 404 (no row can be made for them), each with its reason. Empty: every route that
# names an object is opened on a real one. An entry needs a comment saying why no row can be made.
REACHED_ONLY_AS_404: dict[str, str] = {}
# The pages of an item held by one reviewer: another reviewer allowed to review is refused it (403 naming the
# holder), as the item's own tests say (tests/moderation/review/, tests/moderation/tagging/).
HELD_BY_ITS_HOLDER = ("moderation:review_task", "moderation:review_cot", "moderation:tag_task")


def writes_into(writes: list[str]) -> Callable[..., Any]:
    """A ``connection.execute_wrapper`` that adds each INSERT, UPDATE or DELETE sent to ``writes`` (the session's
    own rows, a sign-in's, are not the app's writes)."""

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and "django_session" not in sql:
            writes.append(sql[:120])
        return execute(sql, params, many, context)

    return record


@dataclass
class RouteWorld:
    holder: Any  # the reviewer holding the review item and the tags item
    kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)  # route -> URL arguments other than ``PK``

    def url(self, name: str, pattern: URLPattern) -> str:
        """The route's URL on the world's row; "" for DRF's ".json" twin of a route opened without it."""
        args = re.findall(r"<(?:(\w+):)?(\w+)>", str(pattern.pattern))
        if any(arg == "format" for _conv, arg in args):
            return ""
        kwargs: dict[str, Any] = {
            arg: PK if conv == "int" else ("default" if conv == "slug" else str(PK)) for conv, arg in args
        }
        kwargs.update(self.kwargs.get(name, {}))
        return reverse(name, kwargs=kwargs)


def route_world(*, holder: Any) -> RouteWorld:
    """Make the rows (in the calling test's transaction). The review item and the tags item are claimed by
    ``holder``: unclaimed, the review item's page and its CoT page answer 403 and run nothing."""
    from annotation.models import Tag2CotTask
    from moderation.integrations.models import Integration, OutboxEvent, WebhookDelivery, WebhookEndpoint
    from moderation.integrations.services import integration_create
    from moderation.tagging.services import tag_queue_default, tag_set_default
    from training.models import EvaluationRun, TrainingJob

    # The one write a GET makes, on purpose: the Content tags queue and the default tag set, made by the first visit
    # to a tags screen (get_or_create: once, idempotent, nothing a user chose). Made here, as after that visit.
    tag_queue_default()
    tag_set_default()
    # The policy at the id too: its pages (detail, diff, edit) were 404s, opened by the scan but never run.
    version = PolicyVersionFactory(pk=PK, policy=PolicyFactory(pk=PK))
    video = VideoFactory(pk=PK)  # decided below, so open to every reviewer (routed to no restricted queue)
    SegmentFactory(video=video, text="ping me on signal for the real price")
    model = ModelVersionFactory(pk=PK)
    decision = DecisionFactory(pk=PK, video=video, policy_version=version, model_version=model)
    ReviewTaskFactory(pk=PK, decision=decision, status="claimed", claimed_by=holder)
    # A tags-queue item is a review task too: its own id, on another decided video.
    tag_task = TagTaskFactory(
        decision__policy_version=version, status="claimed", claimed_by=holder, suggestions=[("火锅", 0.8)]
    )
    Tag2CotTask.objects.create(
        pk=PK, video=video, decision=decision, policy_version=version, target_label="引导私下交易"
    )
    ReproCandidateFactory(pk=PK, video=video, original=DecidedVideoFactory(title="the original"))
    TagProposalFactory(pk=PK, name="私下交易", video=video)
    AdjudicationFactory(pk=PK, decision=decision)
    dataset = PreferenceDatasetFactory(pk=PK, name="probe", jsonl=b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    TrainingJob.objects.create(pk=PK, dataset=dataset, params={"max_steps": 4}, total_steps=4)
    integration, _token = integration_create(name="probe")
    Integration.objects.filter(pk=integration.pk).update(id=PK)
    endpoint = WebhookEndpoint.objects.create(
        pk=PK, integration_id=PK, url="https://93.184.216.34/hook", event_types=["model.promoted"], secret="s"
    )
    test_event = OutboxEvent.objects.create(type="webhook.test", payload={"test": True})
    WebhookDelivery.objects.create(pk=PK, endpoint=endpoint, event=test_event)
    EvaluationRun.objects.create(pk=PK, model_version=model, policy_version=version, eval_set_key="gold")
    return RouteWorld(
        holder=holder,
        kwargs={"moderation:tag_task": {"pk": tag_task.pk}, "media": {"path": str(video.file.name)}},
    )
