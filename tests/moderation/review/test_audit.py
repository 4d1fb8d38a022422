"""The audit log is append-only in the database itself, and the admin can filter it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.test import Client

from moderation.review.models import AuditEvent
from moderation.review.services import review_claim_next, review_release, review_submit

pytestmark = pytest.mark.django_db


def test_update_and_delete_are_refused_by_the_database(make_task, make_user):
    task = make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    event = AuditEvent.objects.get(action="claim")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.payload = {"queue": "elsewhere"}
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()

    event.refresh_from_db()
    assert event.action == "claim" and event.payload == {"queue": "default"}
    assert event.actor == alice and event.object_id == str(task.pk)


def test_every_review_action_is_logged(make_task, make_user):
    first, second = make_task(), make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    review_release(task=first, user=alice)
    review_claim_next(user=alice)
    review_submit(task=first, user=alice, verdict="override", label="色情低俗", severity="high")
    review_claim_next(user=alice)
    client = Client()
    client.force_login(alice)
    client.post("/logout/")  # releases the held item

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "object_id"))
    assert actions == [
        ("claim", str(first.pk)),
        ("release", str(first.pk)),
        ("claim", str(first.pk)),
        ("review.override", str(first.pk)),
        ("claim", str(second.pk)),
        ("release", str(second.pk)),
    ]
    override = AuditEvent.objects.get(action="review.override")
    assert override.payload["label"] == "色情低俗" and override.payload["model_label"] == first.decision.label


def test_admin_lists_and_filters_the_log_read_only(make_task, make_user):
    make_task()
    alice = make_user("moderator")
    task = review_claim_next(user=alice)
    review_release(task=task, user=alice)
    admin = User.objects.create_superuser("root", "root@example.com", "pw-test-123")
    client = Client()
    client.force_login(admin)

    html = client.get("/admin/moderation/auditevent/?action__exact=release").content.decode()
    assert 'class="field-action">release<' in html and 'class="field-action">claim<' not in html
    assert client.get(f"/admin/moderation/auditevent/?q={alice.username}").status_code == 200
    event = AuditEvent.objects.first()
    page = client.get(f"/admin/moderation/auditevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page  # view only
    assert client.get("/admin/moderation/auditevent/add/").status_code == 403


def test_the_actor_filter_names_the_events_no_user_caused(make_task, make_user):
    """axe in Chromium on the audit log (link-name, serious): events beat or a worker recorded have no actor
    name, and "By actor name" listed them as a link with no text, which a screen reader reads as nothing."""
    import re

    from moderation.review.admin import ActorNameListFilter
    from moderation.review.services import audit_event_record

    make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    audit_event_record(actor=None, action="retrain.trigger", obj=None, payload={})
    admin = User.objects.create_superuser("root", "root@example.com", "pw-test-123")
    client = Client()
    client.force_login(admin)

    html = client.get("/admin/moderation/auditevent/").content.decode()

    links = dict(re.findall(r'<a href="\?actor_name=([^"]*)">([^<]*)</a>', html))
    assert links[""].strip() == ActorNameListFilter.NO_USER and links[alice.username].strip() == alice.username
    system_only = client.get("/admin/moderation/auditevent/?actor_name=").content.decode()
    assert "retrain.trigger" in system_only and 'class="field-action">claim<' not in system_only
