"""A GET changes nothing: every route of ours is opened with GET by an admin who is also staff, its objects made at
one id (so a URL's ``<int:pk>`` names a real row: a video, its decision and review item, a policy version, a model,
an integration and its endpoint, an evaluation), and every INSERT, UPDATE or DELETE the request sends is recorded.
Found this way: the impact preview's GET ran the model on up to 2,000 items and kept the run (``?refresh=1`` each
time). The session's own rows (sign-in) are not the app's writes."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories import (
    DecisionFactory,
    ModelVersionFactory,
    PolicyVersionFactory,
    ReviewTaskFactory,
    SegmentFactory,
    VideoFactory,
)
from tests.hardening.test_route_matrix import NOT_OURS, _routes

PK = 777


def _world() -> None:
    from moderation.integrations.models import Integration, WebhookEndpoint
    from moderation.integrations.services import integration_create
    from moderation.tagging.services import tag_queue_default, tag_set_default
    from training.models import EvaluationRun

    # The one write a GET makes, on purpose: the Content tags queue and the default tag set, made by the first visit
    # to a tags screen (get_or_create: once, idempotent, nothing a user chose). Made here, as after that visit.
    tag_queue_default()
    tag_set_default()
    version = PolicyVersionFactory(pk=PK)
    video = VideoFactory(pk=PK)
    SegmentFactory(video=video, text="ping me on signal for the real price")
    model = ModelVersionFactory(pk=PK)
    decision = DecisionFactory(pk=PK, video=video, policy_version=version, model_version=model)
    ReviewTaskFactory(pk=PK, decision=decision)
    integration, _token = integration_create(name="probe")
    Integration.objects.filter(pk=integration.pk).update(id=PK)
    WebhookEndpoint.objects.create(
        pk=PK, integration_id=PK, url="https://93.184.216.34/hook", event_types=["model.promoted"], secret="s"
    )
    EvaluationRun.objects.create(pk=PK, model_version=model, policy_version=version, eval_set_key="gold")


@pytest.mark.django_db
def test_no_get_of_our_routes_writes_to_the_database(make_user) -> None:
    _world()
    user = make_user("admin")
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    writes: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and "django_session" not in sql:
            writes.append(sql[:120])
        return execute(sql, params, many, context)

    found: list[str] = []
    opened = 0
    for name, pattern, _params in _routes():
        if name.startswith(NOT_OURS) or name == "logout":
            continue
        args = re.findall(r"<(?:(\w+):)?(\w+)>", str(pattern.pattern))
        if any(arg == "format" for _conv, arg in args):
            continue  # DRF's ".json" twin of a route opened without it
        kwargs = {arg: PK if conv == "int" else ("default" if conv == "slug" else str(PK)) for conv, arg in args}
        url = reverse(name, kwargs=kwargs)
        writes.clear()
        with connection.execute_wrapper(record):
            status = client.get(url).status_code
        opened += status == 200
        if writes:
            found.append(f"GET {url} ({name}, {status}): {writes[:3]}")
    assert not found, "\n".join(found)
    assert opened >= 40  # the pages opened (a probe of 404s only would prove nothing)
