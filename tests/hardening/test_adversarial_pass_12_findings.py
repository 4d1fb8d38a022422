"""Pass 12: an adversarial pass, as an attacker and as a careless user. The two items left open by pass 11 (a whole
username in another alphabet that reads as a user's; the webhook test line going quiet at the first retry), then new
ground. Each test below is a finding and its fix: it fails on the code before the fix. What was probed and held is
listed in /work/shots/hadv22/FINDINGS.md."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from moderation.integrations.models import WebhookDelivery
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import webhook_delivery_send, webhook_endpoint_create
from tests.moderation.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
PASSWORD = "plum-harbour-kettle-81"


@pytest.mark.parametrize(
    ("existing", "lookalike", "alphabet"),
    [
        ("jake", "\u13ab\u13aa\u13e6\u13ac", "Cherokee"),  # ᎫᎪᏦᎬ: CHEROKEE LETTER GU, GO, TSO, GV
        ("jake", "\uab7b\uab7a\uabb6\uab7c", "Cherokee"),  # the same in Cherokee's small letters
        ("admin", "\ua4ee\ua4d3\ua4df\ua4f2\ua4e0", "Lisu"),  # ꓮꓓꓟꓲꓠ: drawn exactly as A D M I N
        ("luv", "\u14aa\u144c\u142f", "Canadian syllabics"),  # ᒪᑌᐯ: CANADIAN SYLLABICS MA, TE, PE
    ],
)
def test_a_username_wholly_in_another_alphabet_that_reads_as_a_users_is_refused(
    existing: str, lookalike: str, alphabet: str
) -> None:
    """Finding (open from pass 11): "ᎫᎪᏦᎬ", every letter Cherokee, was taken beside "jake": one alphabet, so not
    mixed, and its skeleton kept the Cherokee letters. The skeleton reads them as the Latin letters they are drawn
    as, and the message says which alphabet the name is written in."""
    User.objects.create_user(existing)
    said = f"“{lookalike}” looks like the existing user “{existing}”: it is written in {alphabet} letters drawn like"
    with pytest.raises(ValidationError, match=said):
        User(username=lookalike, password="x").full_clean()


def test_the_admins_user_form_says_so_and_makes_no_user() -> None:
    User.objects.create_user("jake", password=PASSWORD)
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", PASSWORD))
    cherokee = "\u13ab\u13aa\u13e6\u13ac"
    response = client.post(
        "/admin/auth/user/add/",
        {"username": cherokee, "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 200
    assert "it is written in Cherokee letters drawn like Latin ones" in response.content.decode()
    assert not User.objects.filter(username=cherokee).exists()
    User(username="\u13a0\u13c2\u13e3", password="x").full_clean()  # Cherokee that reads as no one's is taken


def _asks(html: str) -> str | None:
    found = re.search(r'hx-get="([^"]+)" hx-trigger="every (\d+)s"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_test_event_line_follows_the_delivery_through_its_retry_to_the_outcome(client_as) -> None:  # type: ignore[no-untyped-def]
    """Finding (open from pass 11): the line under "Send a test event" stopped asking at the first failed attempt
    ("Not delivered: attempt 1 got HTTP 503. Next try …"), so a test that the retry delivered still read as failed
    until the page was reloaded. It keeps asking while the delivery waits to retry (when the next try is due), says
    the attempt it is on, and ends with the outcome; a retry no worker takes stops it, saying why."""
    admin = client_as("admin")
    integration, _token = integration_create(name="platform-a")
    with Receiver(answer=lambda n: 503 if n == 1 else 200) as receiver:
        endpoint, _ = webhook_endpoint_create(integration=integration, url=receiver.url, event_types=["model.promoted"])
        queued = admin.post(f"/integrations/endpoints/{endpoint.pk}/test/", **HTMX).content.decode()
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert webhook_delivery_send(delivery_id=delivery.pk) == "retrying"

        waiting = admin.get(_asks(queued), **HTMX)  # type: ignore[arg-type]
        html = waiting.content.decode()
        assert "Not delivered yet: attempt 1 of 15 got HTTP 503" in html and "Next try" in html
        ask = _asks(html)
        assert ask is not None and "seen=1" in ask  # still asking
        assert waiting["HX-Trigger"] == "delivery-log-changed"  # the log's row shows the attempt too

        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        again = admin.get(ask, **HTMX)
        assert "Due since" in again.content.decode() and _asks(again.content.decode()) is not None
        assert "HX-Trigger" not in again  # nothing new for the log
        assert webhook_delivery_send(delivery_id=delivery.pk) == "delivered"

    done = admin.get(ask, **HTMX)
    html = done.content.decode()
    assert "Delivered on attempt 2: the endpoint answered HTTP 200" in html and _asks(html) is None
    assert done["HX-Trigger"] == "delivery-log-changed"

    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="retrying", next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    stuck = admin.get(ask, **HTMX).content.decode()
    assert "no worker has sent it (are the webhook workers running?)" in stuck and _asks(stuck) is None
