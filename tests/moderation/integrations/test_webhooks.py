"""Webhooks: signatures, outbox fan-out from real state changes, retries, auto-disable, delivery log."""

from __future__ import annotations

import json
import time

import pytest
from django.utils import timezone

from moderation.inference.services import model_version_promote
from moderation.integrations.models import EventType, IntegrationVideo, OutboxEvent, WebhookDelivery, WebhookEndpoint
from moderation.integrations.signing import SignatureError, signature_header, verify
from moderation.integrations.webhooks import outbox_dispatch, webhook_delivery_send, webhook_endpoint_create
from moderation.review.services import review_submit
from tests.factories import ModelVersionFactory, ReviewTaskFactory, UserFactory
from tests.moderation.integrations.receiver import Receiver

SECRET = "whsec_test"


def test_signature_verifies_and_a_tampered_body_or_wrong_secret_or_old_timestamp_fails():
    body = b'{"id":"e1","type":"decision.created"}'
    header = signature_header(secret=SECRET, body=body)
    assert verify(secret=SECRET, header=header, body=body) > 0
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret=SECRET, header=header, body=body.replace(b"decision", b"decisiom"))
    with pytest.raises(SignatureError, match="does not match"):
        verify(secret="whsec_other", header=header, body=body)
    old = signature_header(secret=SECRET, body=body, timestamp=int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(secret=SECRET, header=old, body=body)
    with pytest.raises(SignatureError, match="timestamp"):
        verify(secret=SECRET, header="v1=abc", body=body)


def _due_now(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


@pytest.mark.django_db
def test_review_events_are_written_with_the_change_and_fanned_out_to_subscribed_endpoints(platform, other_platform):
    task = ReviewTaskFactory()
    IntegrationVideo.objects.create(integration=platform.integration, video=task.decision.video)
    mine, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/a", event_types=["review.completed", "label.final"]
    )
    only_models, _ = webhook_endpoint_create(
        integration=other_platform.integration, url="http://127.0.0.1:9/b", event_types=["model.promoted"]
    )
    not_mine, _ = webhook_endpoint_create(
        integration=other_platform.integration, url="http://127.0.0.1:9/c", event_types=["review.completed"]
    )
    reviewer = UserFactory(role="moderator")
    task.status, task.claimed_by = "claimed", reviewer
    task.save()

    review_submit(task=task, user=reviewer, verdict="approve")
    model_version_promote(model_version=ModelVersionFactory(name="candidate-2"))

    events = {e.type: e for e in OutboxEvent.objects.all()}
    assert set(events) == {"review.completed", "label.final", "model.promoted"}
    assert events["review.completed"].payload["label"] == "正向"
    assert events["label.final"].payload == {
        "video_id": task.decision.video_id,
        "external_id": None,
        "label": "正向",
        "source": "review",
        "policy_version": str(task.decision.policy_version),
    }
    for event in events.values():
        outbox_dispatch(event_id=str(event.pk))
    got = set(WebhookDelivery.objects.values_list("endpoint_id", "event__type"))
    assert got == {(mine.pk, "review.completed"), (mine.pk, "label.final"), (only_models.pk, "model.promoted")}
    assert not_mine.deliveries.count() == 0  # not its video
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 0
    assert outbox_dispatch() == []  # nothing is fanned out twice


@pytest.mark.django_db
def test_a_delivery_is_signed_retried_with_backoff_and_the_endpoint_disabled_after_n_failures(platform, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    with Receiver(answer=lambda n: 500 if n <= 3 else 200) as receiver:
        endpoint, secret = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        model_version_promote(model_version=ModelVersionFactory(name="candidate-3"))
        [delivery_id] = outbox_dispatch()

        assert webhook_delivery_send(delivery_id=delivery_id) == "retrying"
        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("retrying", 1, 500)
        wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
        assert 4 <= wait <= 10  # base 10 s, jitter in [½, 1]
        assert webhook_delivery_send(delivery_id=delivery_id) == "not-due"

        _due_now(delivery_id)
        webhook_delivery_send(delivery_id=delivery_id)
        _due_now(delivery_id)
        webhook_delivery_send(delivery_id=delivery_id)
        endpoint.refresh_from_db()
        assert not endpoint.is_active and "3 failed attempts in a row" in endpoint.disabled_reason
        assert "HTTP 500" in endpoint.disabled_reason
        _due_now(delivery_id)
        assert webhook_delivery_send(delivery_id=delivery_id) == "endpoint-disabled"

        from moderation.integrations.webhooks import webhook_endpoint_enable

        webhook_endpoint_enable(endpoint=endpoint)
        assert webhook_delivery_send(delivery_id=delivery_id) == "delivered"
        assert webhook_delivery_send(delivery_id=delivery_id) == "done"

    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert endpoint.consecutive_failures == 0
    bodies = {r["body"] for r in receiver.requests}
    assert len(receiver.requests) == 4 and len(bodies) == 1  # the same bytes every time
    body = receiver.requests[-1]["body"]
    envelope = json.loads(body)
    assert envelope["type"] == "model.promoted" and envelope["data"]["model_version"] == "candidate-3"
    headers = receiver.requests[-1]["headers"]
    assert headers["Workbench-Event-Id"] == envelope["id"] == str(OutboxEvent.objects.get().pk)
    verify(secret=secret, header=headers["Workbench-Signature"], body=body)
    with pytest.raises(SignatureError):
        verify(secret=secret, header=headers["Workbench-Signature"], body=body + b" ")


@pytest.mark.django_db
def test_delivery_log_page_redeliver_and_roles(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/x", event_types=[EventType.MODEL_PROMOTED]
    )
    model_version_promote(model_version=ModelVersionFactory(name="candidate-4"))
    [delivery_id] = outbox_dispatch()
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status="failed", attempts=15, last_status_code=503, last_latency_ms=12.0
    )
    admin = client_as("admin")
    page = admin.get(f"/integrations/endpoints/{endpoint.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"delivery-{delivery_id}" in html and "HTTP 503" in html and "12 ms" in html
    resp = admin.post(f"/integrations/deliveries/{delivery_id}/redeliver/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and "queued" in resp.content.decode()
    assert WebhookDelivery.objects.get(pk=delivery_id).status == "pending"
    assert admin.get("/integrations/").status_code == 200
    for role in ("moderator", "labeler", "policy_editor"):
        assert client_as(role).get(f"/integrations/endpoints/{endpoint.pk}/").status_code == 403
        assert client_as(role).post(f"/integrations/deliveries/{delivery_id}/redeliver/").status_code == 403
    assert client_as(None).get("/integrations/").status_code == 403
    from django.test import Client

    assert Client().get("/integrations/").status_code == 302


@pytest.mark.django_db
def test_endpoint_validation_messages(platform):
    from moderation.errors import ModerationError

    with pytest.raises(ModerationError, match="not an http"):
        webhook_endpoint_create(integration=platform.integration, url="ftp://x", event_types=["model.promoted"])
    with pytest.raises(ModerationError, match="Unknown event type"):
        webhook_endpoint_create(integration=platform.integration, url="http://x.test/", event_types=["nope"])
    with pytest.raises(ModerationError, match="at least one"):
        webhook_endpoint_create(integration=platform.integration, url="http://x.test/", event_types=[])
    assert WebhookEndpoint.objects.count() == 0


def test_the_readme_verification_snippet_accepts_our_signature_and_refuses_a_tampered_body():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    snippet = next(block for block in readme.split("```python")[1:] if "def verify(" in block).split("```")[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - our own README
    body = b'{"id":"e2","type":"label.final"}'
    header = signature_header(secret=SECRET, body=body)
    assert namespace["verify"](SECRET, header, body) is True
    assert namespace["verify"](SECRET, header, body + b"\n") is False
    assert namespace["verify"]("whsec_wrong", header, body) is False


def test_an_unknown_delivery_status_filter_is_said_and_every_delivery_shown(platform, client_as):
    """``?status=banana`` showed every delivery without a word (the select then read "all"): a mistyped or
    outdated link read as a filter. Now it is said (400) and every delivery shown."""
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/x", event_types=[EventType.MODEL_PROMOTED]
    )
    model_version_promote(model_version=ModelVersionFactory(name="candidate-5"))
    [delivery_id] = outbox_dispatch()
    WebhookDelivery.objects.filter(pk=delivery_id).update(status="failed")
    admin = client_as("admin")
    url = f"/integrations/endpoints/{endpoint.pk}/"

    unknown = admin.get(url, {"status": "banana"})

    html = unknown.content.decode()
    assert unknown.status_code == 400
    assert "There is no delivery status “banana”: showing every delivery." in html and 'role="alert"' in html
    assert f"delivery-{delivery_id}" in html
    failed = admin.get(url, {"status": "failed"})
    assert failed.status_code == 200 and f"delivery-{delivery_id}" in failed.content.decode()
    assert "There is no" not in failed.content.decode()
    assert f"delivery-{delivery_id}" not in admin.get(url, {"status": "delivered"}).content.decode()


@pytest.mark.django_db
def test_each_event_type_is_said_in_words_on_both_forms_that_choose_them(platform, client_as):
    """Walk hwalk20: the add-endpoint and change-events forms named the events by their codes only (label.final,
    review.completed, ...); what each means was a checkbox's title, a mouse tooltip that neither the keyboard nor a
    screen reader reaches. Both forms now say each one on the page."""
    from django.urls import reverse
    from django.utils.html import escape

    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/a", event_types=["label.final"]
    )
    admin = client_as("admin")
    for url in (reverse("moderation:integration_list"), reverse("moderation:webhook_endpoint", args=[endpoint.pk])):
        page = admin.get(url).content.decode()
        said = page[page.index("data-event-types-said") :]
        said = said[: said.index("</p>")]
        for value, label in EventType.choices:
            assert f"<code>{value}</code>: {escape(label.lower())}" in said, (url, value)


@pytest.mark.django_db
def test_an_endpoint_without_deliveries_says_when_one_is_made(platform, client_as):
    """Walk hwalk20: a new endpoint's delivery log read "No deliveries." with no word of what makes one."""
    from django.urls import reverse

    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/a", event_types=["label.final"]
    )
    url = reverse("moderation:webhook_endpoint", args=[endpoint.pk])
    page = client_as("admin").get(url).content.decode()
    said = page[page.index("data-no-deliveries") :]
    said = said[: said.index("</td>")]
    assert "No deliveries yet: one is made each time an event this endpoint subscribes to happens" in said
    assert "on a video platform-a submitted" in said
    filtered = client_as("admin").get(url, {"status": "failed"}).content.decode()
    assert "No deliveries with this status." in filtered
