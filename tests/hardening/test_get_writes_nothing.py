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
    PolicyFactory,
    PolicyVersionFactory,
    ReviewTaskFactory,
    SegmentFactory,
    VideoFactory,
)
from tests.hardening.test_route_matrix import NOT_OURS, _routes

PK = 777


def _world(user: object) -> None:
    from annotation.models import Tag2CotTask
    from moderation.integrations.models import Integration, WebhookEndpoint
    from moderation.integrations.services import integration_create
    from moderation.tagging.services import tag_queue_default, tag_set_default
    from training.models import EvaluationRun, PreferenceDataset, TrainingJob

    # The one write a GET makes, on purpose: the Content tags queue and the default tag set, made by the first visit
    # to a tags screen (get_or_create: once, idempotent, nothing a user chose). Made here, as after that visit.
    tag_queue_default()
    tag_set_default()
    # The policy at the id too: its pages (detail, diff, edit) were 404s, opened by the scan but never run.
    version = PolicyVersionFactory(pk=PK, policy=PolicyFactory(pk=PK))
    video = VideoFactory(pk=PK)
    SegmentFactory(video=video, text="ping me on signal for the real price")
    model = ModelVersionFactory(pk=PK)
    decision = DecisionFactory(pk=PK, video=video, policy_version=version, model_version=model)
    # Claimed by the scanning admin: unclaimed, the item's page and its CoT page answered 403 and ran nothing.
    ReviewTaskFactory(pk=PK, decision=decision, status="claimed", claimed_by=user)
    Tag2CotTask.objects.create(
        pk=PK, video=video, decision=decision, policy_version=version, target_label="引导私下交易"
    )
    dataset = PreferenceDataset.objects.create(pk=PK, name="probe")
    TrainingJob.objects.create(pk=PK, dataset=dataset, params={"max_steps": 4}, total_steps=4)
    integration, _token = integration_create(name="probe")
    Integration.objects.filter(pk=integration.pk).update(id=PK)
    WebhookEndpoint.objects.create(
        pk=PK, integration_id=PK, url="https://93.184.216.34/hook", event_types=["model.promoted"], secret="s"
    )
    EvaluationRun.objects.create(pk=PK, model_version=model, policy_version=version, eval_set_key="gold")


def _urls() -> list[tuple[str, str]]:
    """(route name, its address with every argument at ``PK``) for every route of ours."""
    urls = []
    for name, pattern, _params in _routes():
        if name.startswith(NOT_OURS) or name == "logout":
            continue
        args = re.findall(r"<(?:(\w+):)?(\w+)>", str(pattern.pattern))
        if any(arg == "format" for _conv, arg in args):
            continue  # DRF's ".json" twin of a route opened without it
        kwargs = {arg: PK if conv == "int" else ("default" if conv == "slug" else str(PK)) for conv, arg in args}
        urls.append((name, reverse(name, kwargs=kwargs)))
    return urls


@pytest.mark.django_db
def test_no_trace_or_made_up_method_on_our_routes_runs_a_view(make_user) -> None:
    """TRACE (a safe method to CSRF) and made-up methods ran a function view as a GET does: the page rendered, its
    reads and any write a GET would make. Every route answers them 405 with ``Allow`` now, writing nothing."""
    user = make_user("admin")
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    _world(user)
    client = Client()
    client.force_login(user)
    statements: list[str] = []

    def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "django_session" not in sql:
            statements.append(sql[:120])
        return execute(sql, params, many, context)

    found: list[str] = []
    urls = _urls()
    for name, url in urls:
        for method in ("TRACE", "CONNECT", "PURGE"):
            statements.clear()
            with connection.execute_wrapper(record):
                response = client.generic(method, url)
            if response.status_code != 405 or "TRACE" in response.get("Allow", "TRACE") or statements:
                found.append(
                    f"{method} {url} ({name}, {response.status_code}, {response.get('Allow')}): {statements[:3]}"
                )
    assert not found, "\n".join(found)
    assert len(urls) > 100  # every route of ours, not a few


@pytest.mark.django_db
def test_no_get_of_our_routes_writes_to_the_database(make_user) -> None:
    user = make_user("admin")
    type(user).objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    _world(user)
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
    for name, url in _urls():
        # HEAD too: Django's CSRF check passes it as it passes GET, so a view writing on "not GET" would be a
        # cross-site write (none does: checked here so none comes to).
        for method in ("GET", "HEAD"):
            writes.clear()
            with connection.execute_wrapper(record):
                status = client.generic(method, url).status_code
            opened += method == "GET" and status == 200
            if writes:
                found.append(f"{method} {url} ({name}, {status}): {writes[:3]}")
    assert not found, "\n".join(found)
    # The pages opened (a probe of 404s only would prove nothing): 47 before the policy, the claimed item, the
    # Tag2CoT task and the training job were made at the id (their pages were 404s and 403s, their views never ran).
    assert opened >= 54
