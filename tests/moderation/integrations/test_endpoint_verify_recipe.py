"""The endpoint page carries the verification recipe itself: it said "verify as in the README", a file the
platform's engineers may not have. The recipe's headers, algorithm, signed bytes and tolerance are on the page, and
its snippet, run as shown, accepts what the sender signs and refuses a changed body or an old timestamp."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from moderation.integrations.models import WebhookEndpoint
from moderation.integrations.services import integration_create
from moderation.integrations.signing import signature_header

pytestmark = pytest.mark.django_db


def test_the_endpoint_page_says_how_to_verify_a_delivery_and_its_snippet_works(make_user):
    integration, _ = integration_create(name="platform-v")
    endpoint = WebhookEndpoint.objects.create(
        integration=integration, url="https://hooks.example.com/in", secret="whsec-test", event_types=["label.final"]
    )
    client = Client()
    client.force_login(make_user("admin"))
    page = client.get(reverse("moderation:webhook_endpoint", args=[endpoint.pk])).content.decode()
    assert "README" not in page
    section = re.search(r'<section class="panel" id="verify-deliveries">(.*?)</section>', page, re.S)
    assert section is not None
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", section[1])).split())
    for header in ("Workbench-Event-Id", "Workbench-Event-Type", "Workbench-Delivery-Attempt", "Workbench-Signature"):
        assert header in text, header
    assert "HMAC-SHA256" in text and "raw request body" in text and "300 seconds" in text
    snippet = re.search(r"<pre><code>(.*?)</code></pre>", section[1], re.S)
    assert snippet is not None
    scope: dict = {}
    exec(unescape(snippet[1]), scope)  # noqa: S102 - our own page's snippet, run as a reader would
    verify = scope["verify"]
    body = b'{"id": 1, "type": "label.final", "created_at": "2026-12-05T18:00:00Z", "data": {}}'
    assert verify(endpoint.secret, signature_header(secret=endpoint.secret, body=body), body)
    assert not verify(endpoint.secret, signature_header(secret=endpoint.secret, body=body), body + b" ")
    old = signature_header(secret=endpoint.secret, body=body, timestamp=int(time.time()) - 301)
    assert not verify(endpoint.secret, old, body)
