"""Pass 12: an adversarial pass, as an attacker and as a careless user. The two items left open by pass 11 (a whole
username in another alphabet that reads as a user's; the webhook test line going quiet at the first retry), then new
ground. Each test below is a finding and its fix: it fails on the code before the fix. What was probed and held is
listed in /work/shots/hadv22/FINDINGS.md."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.errors import ModerationError
from moderation.integrations.models import WebhookDelivery
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import webhook_delivery_send, webhook_endpoint_create
from moderation.policies.taxonomy import taxonomy_errors, taxonomy_normalise
from moderation.review.models import AuditEvent
from moderation.tagging.models import Tag
from moderation.tagging.services import tags_import
from tests.factories import DecisionFactory
from tests.moderation.integrations.receiver import Receiver
from workbench.tokens import api_token_issue

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


@pytest.mark.parametrize(
    ("lookalike", "said"),
    [
        ("b\u0966b", "mixes Latin letters with Devanagari digits (“\u0966”)"),  # DEVANAGARI DIGIT ZERO
        ("b\u1040b", "mixes Latin letters with Myanmar digits (“\u1040”)"),  # MYANMAR DIGIT ZERO
        ("b\u0ce6b", "mixes Latin letters with Kannada digits (“\u0ce6”)"),  # KANNADA DIGIT ZERO
        ("\u0966\u0966\u096d", "looks like the existing user “007”"),  # ००७: Devanagari digits alone
    ],
)
def test_a_username_with_another_scripts_digit_drawn_as_a_latin_letter_is_refused(lookalike: str, said: str) -> None:
    """Finding: the mixed-script rule read letters only, so "b०b" (a Devanagari zero, drawn as a round "o") was
    taken beside "bob", as was a Myanmar or Kannada zero; "००७" beside "007". A script's digits count as that
    script's, and the skeletons read them as ASCII digits."""
    User.objects.create_user("bob")
    User.objects.create_user("007")
    with pytest.raises(ValidationError, match=re.escape(said)):
        User(username=lookalike, password="x").full_clean()
    User(username="ali3", password="x").full_clean()  # ASCII digits with Latin letters are still a name


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


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    ["p=garbage", "p=2020-13-45T99:00", "p=2020-01-01%00", "p=" + "x" * 300, "p=2020-01-01T00:00:00%2B99:00"],
)
def test_a_cursor_edited_by_hand_is_a_404_saying_so_not_a_500(make_user, cursor: str) -> None:  # type: ignore[no-untyped-def]
    """Finding: the sync lists' cursor (``?cursor=``, base64 of ``p=<the last row's time>``) is the client's to
    send. DRF refused a bad offset, but a position that is no time ("p=garbage") reached the database filter as
    Django's ValidationError: a 500 on GET /api/decisions/ and /api/labels/. It is the 404 of a bad cursor now."""
    DecisionFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=make_user('admin')).key}")
    for address in ("/api/decisions/", "/api/labels/"):
        response = api.get(address, {"cursor": _cursor(cursor)})
        assert response.status_code == 404, (address, response.content[:200])
        assert (
            "Invalid cursor: pass the “next” or “previous” link of a page as it was given" in response.json()["detail"]
        )

    first = api.get("/api/decisions/", {"page_size": 1}).json()  # a real cursor still pages, a zone-less time too
    assert len(first["results"]) == 1
    assert api.get("/api/decisions/", {"cursor": _cursor("p=2020-01-01")}).status_code == 200


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("cat\u200b", "U+200B ZERO WIDTH SPACE"),
        ("do\u00adg", "U+00AD SOFT HYPHEN"),
        ("\ufeffcat", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("ca\u2060t", "U+2060 WORD JOINER"),
        ("cat\u200d", "U+200D ZERO WIDTH JOINER"),
    ],
)
def test_a_tag_name_holding_a_character_drawn_as_nothing_is_refused_saying_which(written: str, said: str) -> None:
    """Finding: "cat\\u200b" (a zero-width space pasted with the word) was imported beside "cat" as a second tag:
    the two read the same in every list and on every review screen, and the second matched no video's text (its key
    held the invisible character). A name or alias with a character drawn as nothing is refused on its line, naming
    the character; joiners inside a script that uses them are kept."""
    report = tags_import(lines=["cat", "dog", written, "नमस्\u200dते", "cats\tfeline, ki\u200btty"])
    names = set(Tag.objects.values_list("name", flat=True))
    assert names == {"cat", "dog", "नमस्\u200dते"}, names
    assert any(f"line 3: contains an invisible character ({said})" in error for error in report.errors), report.errors
    assert any("line 5: " in e and "U+200B ZERO WIDTH SPACE" in e for e in report.errors), report.errors


def test_new_api_tokens_are_held_to_a_rate_and_the_current_one_is_kept(make_user, settings) -> None:  # type: ignore[no-untyped-def]
    """Finding: ``POST /api/token/ {"rotate": true}`` and the API token page's Rotate made a token each time, as
    fast as the user's API rate (1,200 a minute): each an ``api_token.rotate`` row of the append-only audit log,
    which one script filled at will. New tokens have a per-user rate; over it the API's 429 with ``Retry-After``
    and the page say when to try again, and the token held stays valid. A 409 (a token kept) counts nothing."""
    settings.API_TOKEN_ISSUE_RATE_LIMIT = "2/hour"
    user = make_user("moderator")
    client = APIClient()
    client.force_login(user)
    assert client.post("/api/token/", {}, format="json").status_code == 200
    key = client.post("/api/token/", {"rotate": True}, format="json").json()["token"]
    for _ in range(3):
        assert client.post("/api/token/", {}, format="json").status_code == 409  # kept: not counted
    refused = client.post("/api/token/", {"rotate": True}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many new API tokens: you may make 2/hour" in refused.json()["detail"]

    page = Client()
    page.force_login(user)
    on_page = page.post("/account/api-token/", {"action": "rotate"})
    assert on_page.status_code == 429 and "Too many new API tokens" in on_page.content.decode()
    assert AuditEvent.objects.filter(action__startswith="api_token.", object_id=str(user.pk)).count() == 2
    with_key = APIClient()
    with_key.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert with_key.get("/api/decisions/").status_code == 200  # the token made last still works


def test_a_taxonomy_key_holding_an_invisible_character_or_bidi_control_is_refused() -> None:
    """Finding: names and keywords lose their bidi controls when a taxonomy is stored, keys did not, and no key was
    checked for characters drawn as nothing: a violation type keyed "正向\\u200b" read as the safe label "正向" on
    every verdict, "spam\\u200b" beside "spam" as one type twice, and "ham\\u202e" turned the text after it around on
    each screen naming it (the editor's own messages included). Each is refused, the character named and written
    as its code in the message."""
    taxonomy = [
        {
            "key": "ads\u200b",
            "name": "Ads",
            "tags": [
                {"key": "正向\u200b", "name": "Looks safe", "keywords": ["a"]},
                {"key": "spam", "name": "Spam", "keywords": ["b"]},
                {"key": "spam\u200b", "name": "Spam again", "keywords": ["c"]},
                {"key": "ham\u202e", "name": "Reversed", "keywords": ["d"]},
                {"key": "暴力", "name": "Violence", "keywords": ["e"]},
            ],
        }
    ]
    errors = taxonomy_errors(taxonomy, safe_label="正向")
    assert errors == [
        "Category 1 (ads\\u200b): key “ads\\u200b” holds an invisible character (U+200B ZERO WIDTH SPACE): it would "
        "read as “ads”; type the key without it.",
        "Category 1 (ads\\u200b), tag 1 (正向\\u200b): key “正向\\u200b” holds an invisible character (U+200B ZERO "
        "WIDTH SPACE): it would read as “正向”; type the key without it.",
        "Category 1 (ads\\u200b), tag 3 (spam\\u200b): key “spam\\u200b” holds an invisible character (U+200B ZERO "
        "WIDTH SPACE): it would read as “spam”; type the key without it.",
        "Category 1 (ads\\u200b), tag 4 (ham\\u202e): key “ham\\u202e” holds an invisible bidi control (U+202E "
        "RIGHT-TO-LEFT OVERRIDE): it would read as “ham”; type the key without it.",
    ]


@pytest.mark.parametrize("asked", ["polls=\u00b2", "polls=" + "9" * 5000, "seen=\u00b2&polls=1", "polls=-1"])
def test_the_test_event_lines_counters_that_are_no_ascii_number_are_read_as_none_not_a_500(
    client_as,  # type: ignore[no-untyped-def]
    asked: str,
) -> None:
    """Finding (a sweep of hostile query values over every GET route): the test line's ``?polls=`` was read with
    ``str.isdigit()``, true for "²" and for 5,000 nines, and then ``int()`` refused them: a 500. Only ASCII digits
    count now (``row_id``); anything else is no count."""
    integration, _token = integration_create(name="platform-a")
    endpoint, _ = webhook_endpoint_create(
        integration=integration, url="https://platform.example/hook", event_types=["model.promoted"]
    )
    admin = client_as("admin")
    admin.post(f"/integrations/endpoints/{endpoint.pk}/test/", **HTMX)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    response = admin.get(f"/integrations/deliveries/{delivery.pk}/test-outcome/?{asked}", **HTMX)
    assert response.status_code == 200 and "Queued: waiting for a worker" in response.content.decode()


def test_names_that_tell_things_apart_are_stored_without_characters_drawn_as_nothing() -> None:
    """Finding: names lost their bidi controls where they are stored, not their zero-width spaces: an integration
    "platform-a\\u200b" was added beside "platform-a" (two rows reading the same on the Integrations page and in the
    audit log), and a taxonomy name of a zero-width space alone passed the "must not be empty" check and was stored
    empty. Such characters are dropped from names (a joiner inside a script that uses it is kept) and an empty name
    is said to be empty."""
    integration_create(name="platform-a")
    with pytest.raises(ModerationError, match="An integration named “platform-a” already exists."):
        integration_create(name="platform-a\u200b")
    kept, _token = integration_create(name="\u0646\u0627\u0645\u200c\u062e\u0627\u0646\u0647")  # a Persian ZWNJ
    assert kept.name == "\u0646\u0627\u0645\u200c\u062e\u0627\u0646\u0647"

    taxonomy = [{"key": "ads", "name": "\u200b", "tags": [{"key": "spam", "name": "Sp\u200bam", "keywords": ["x"]}]}]
    assert taxonomy_errors(taxonomy, safe_label="正向") == ["Category 1 (ads): name must not be empty."]
    taxonomy[0]["name"] = "Ads\ufeff"
    stored = taxonomy_normalise(taxonomy)
    assert (stored[0]["name"], stored[0]["tags"][0]["name"]) == ("Ads", "Spam")
