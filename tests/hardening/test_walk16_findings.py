"""What the sixteenth role walk through the running app found that the server draws (the browser half is in
tests/browser/test_walk16_browser.py)."""

from __future__ import annotations

from django.urls import reverse

from moderation.integrations.services import integration_create
from moderation.reproduction.services import pair_claim_next, pair_review_submit
from tests.factories import ReviewTaskFactory
from tests.moderation.reproduction.test_pair_review import make_pair


def test_an_admin_finds_the_audit_log_from_the_operations_screens(client_as, make_user, client) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: the policy screen says gate refusals "are in the audit log", and nothing in the app led
    there (it is the Django admin's audit-event list, reached only by typing its address)."""
    audit = reverse("admin:moderation_auditevent_changelist")
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    ops = client.get(reverse("moderation:ops_dashboard")).content.decode()
    assert f'href="{audit}" id="ops-audit-log">the audit log</a>' in ops
    assert f'<a href="{audit}">Audit log</a>' in client.get(reverse("home")).content.decode()
    assert client.get(audit).status_code == 200
    # An admin-role user the Django admin would refuse is not sent there.
    assert audit not in client_as("admin").get(reverse("moderation:ops_dashboard")).content.decode()


def test_the_reviewed_pairs_give_the_queue_score_as_the_waiting_pairs_do(client_as, make_user) -> None:  # type: ignore[no-untyped-def]
    """Walked as a moderator: pair #1 waited with "Queue score 0.555" and, decided, was listed with "Score 0.55"."""
    admin = make_user("admin")
    pair = make_pair(0.555)
    assert pair_claim_next(user=admin) == pair
    pair_review_submit(candidate=pair, user=admin, verdict="unrelated")
    page = client_as("moderator").get(reverse("moderation:repro_reviewed")).content.decode()
    assert "<th>Queue score</th>" in page and "<td>0.555</td>" in page and "0.55<" not in page


def test_a_refused_webhook_endpoint_puts_the_cursor_back_in_its_url_with_the_reason(client_as, settings) -> None:  # type: ignore[no-untyped-def]
    """Walked as the admin: "Endpoint not added: Webhooks may not be sent to localhost …" and the focus on the page's
    top, the URL to fix a screen below with nothing tying it to the reason."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False  # as served (the tests' receivers are local)
    integration, _ = integration_create(name="clips-platform")
    refused = client_as("admin").post(
        reverse("moderation:webhook_endpoint_add", args=[integration.pk]),
        {"url": "http://localhost:9/hook", "event_types": ["decision.created"]},
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    url_input = page[page.index('<input name="url"') :]
    url_input = url_input[: url_input.index(">")]
    assert "autofocus" in url_input and f'aria-describedby="endpoint-error-{integration.pk}"' in url_input
    assert f'id="endpoint-error-{integration.pk}">Endpoint not added: ' in page


def test_the_tag_screen_leads_back_to_the_tag_queue(client_as, policy_version) -> None:  # type: ignore[no-untyped-def]
    """Walked as a tag reviewer: the review screen has "Back to queue"; the tag screen had no way back but the top
    bar."""
    from moderation.tagging.services import tag_queue_default

    task = ReviewTaskFactory(queue=tag_queue_default(), decision__policy_version=policy_version)
    page = client_as("moderator").get(reverse("moderation:tag_task", args=[task.pk])).content.decode()
    assert f'<a href="{reverse("moderation:tag_queue")}" id="tag-back-to-queue">Back to the tag queue</a>' in page
