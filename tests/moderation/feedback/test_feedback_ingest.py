"""Platform feedback ingest: per-integration tokens, per-row errors, idempotency, aggregates."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from moderation.feedback.models import FeedbackEvent, Integration
from moderation.feedback.selectors import feedback_stats_for
from moderation.inference.backends import ContentBundle
from moderation.inference.backends.evidence import EvidenceBaseline
from moderation.inference.prompts import build_prompt
from moderation.inference.services import content_bundle_for
from moderation.integrations.services import integration_create
from moderation.policies.seed import kuaimod_taxonomy
from tests.factories import VideoFactory
from workbench.tokens import api_token_issue

pytestmark = pytest.mark.django_db

URL = "/api/feedback/events/"
T = "2026-05-01T12:00:00Z"


@pytest.fixture
def integration_token() -> str:
    _integration, token = integration_create(name="platform-a")
    return token


def _post(events, token: str, client: Client | None = None):  # type: ignore[no-untyped-def]
    return (client or Client()).post(
        URL, events, content_type="application/json", HTTP_AUTHORIZATION=f"Integration {token}"
    )


def test_batch_with_bad_rows_accepts_the_good_ones_and_reports_each_error(integration_token):
    video = VideoFactory(external_id="ext-1")
    events = [
        {"event_id": "e1", "type": "report", "video_external_id": "ext-1", "timestamp": T, "reason": "scam"},
        {"event_id": "e2", "type": "teleport", "video_external_id": "ext-1", "timestamp": T},
        {"event_id": "e3", "type": "like", "video_external_id": "nope", "timestamp": T},
        {"event_id": "e4", "type": "like", "video_id": 999999, "timestamp": T},
        {"event_id": "e5", "type": "like", "video_external_id": "ext-1", "timestamp": "yesterday"},
        {"type": "like", "video_external_id": "ext-1", "timestamp": T},
        {"event_id": "e7", "type": "watch_time", "video_id": video.pk, "timestamp": 1767225600, "seconds": 12.5},
        {"event_id": "e8", "type": "watch_time", "video_id": video.pk, "timestamp": T},
        "not an object",
    ]
    resp = _post(events, integration_token)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    errors = {e["index"]: e for e in body["errors"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 7, 8]
    assert "unknown event type" in errors[1]["error"] and errors[1]["event_id"] == "e2"
    assert "unknown video_external_id" in errors[2]["error"]
    assert "unknown video_id" in errors[3]["error"]
    assert "timestamp" in errors[4]["error"]
    assert errors[5]["error"] == "missing event_id" and errors[5]["event_id"] is None
    assert "seconds" in errors[7]["error"]
    assert set(FeedbackEvent.objects.values_list("event_id", flat=True)) == {"e1", "e7"}


def test_epoch_seconds_sent_as_a_json_string_are_read_as_epoch_seconds(integration_token):
    """The schema's timestamp is a string, "ISO 8601 with timezone, or epoch seconds"; "1767225600" was
    refused with "timestamp is not ISO 8601 (…) or epoch seconds"."""
    video = VideoFactory(external_id="ext-1")
    events = [
        {"event_id": "s1", "type": "like", "video_id": video.pk, "timestamp": "1767225600"},
        {"event_id": "s2", "type": "like", "video_id": video.pk, "timestamp": "1767225600.5"},
        {"event_id": "s3", "type": "like", "video_id": video.pk, "timestamp": "-5"},
        {"event_id": "s4", "type": "like", "video_id": video.pk, "timestamp": "١٧٦٧٢٢٥٦٠٠"},
    ]
    body = _post(events, integration_token).json()
    assert body["accepted"] == 2, body
    assert [e["index"] for e in body["errors"]] == [2, 3]
    at = FeedbackEvent.objects.get(event_id="s1").occurred_at
    assert at.isoformat() == "2026-01-01T00:00:00+00:00"


def test_epoch_milliseconds_are_refused_saying_the_unit(integration_token):
    """Date.now() from a JavaScript platform (1764806400000) was refused as "timestamp out of range", and
    1e11 ms as "in the future": nothing said the unit was the problem."""
    video = VideoFactory(external_id="ext-1")
    events = [
        {"event_id": "m1", "type": "like", "video_id": video.pk, "timestamp": 1764806400000},
        {"event_id": "m2", "type": "like", "video_id": video.pk, "timestamp": "1764806400123"},
        {"event_id": "s1", "type": "like", "video_id": video.pk, "timestamp": 1764806400},
    ]
    body = _post(events, integration_token).json()
    assert body["accepted"] == 1, body
    assert [e["error"] for e in body["errors"]] == [
        "timestamp 1764806400000 looks like epoch milliseconds: send epoch seconds (1764806400) or ISO 8601",
        "timestamp 1764806400123 looks like epoch milliseconds: send epoch seconds (1764806400) or ISO 8601",
    ]


def test_resent_events_are_duplicates_not_double_counted(integration_token):
    VideoFactory(external_id="ext-1")
    batch = [
        {"event_id": f"w{i}", "type": "watch_time", "video_external_id": "ext-1", "timestamp": T, "seconds": 10}
        for i in range(3)
    ] + [{"event_id": "r1", "type": "report", "video_external_id": "ext-1", "timestamp": T, "reason": "spam"}]
    assert _post(batch, integration_token).json() == {"accepted": 4, "duplicates": 0, "errors": []}
    # Resent, plus one repeated inside the batch and one new event.
    again = [*batch, batch[0], {"event_id": "l1", "type": "like", "video_external_id": "ext-1", "timestamp": T}]
    assert _post(again, integration_token).json() == {"accepted": 1, "duplicates": 5, "errors": []}
    assert FeedbackEvent.objects.count() == 5
    # The same event id from ANOTHER integration is a different event.
    _other, other_token = integration_create(name="platform-b")
    assert _post(batch[:1], other_token).json()["accepted"] == 1


def test_aggregates_counts_rates_and_appeal_outcome(integration_token):
    video = VideoFactory(external_id="ext-9")
    rows = [
        {"event_id": f"w{i}", "type": "watch_time", "video_external_id": "ext-9", "timestamp": T, "seconds": 20}
        for i in range(10)
    ]
    rows += [
        {
            "event_id": f"r{i}",
            "type": "report",
            "video_external_id": "ext-9",
            "timestamp": T,
            "reason": "scam" if i < 2 else "spam",
        }
        for i in range(3)
    ]
    rows += [{"event_id": f"l{i}", "type": "like", "video_external_id": "ext-9", "timestamp": T} for i in range(4)]
    rows += [
        {"event_id": "d1", "type": "dislike", "video_external_id": "ext-9", "timestamp": T},
        {"event_id": "s1", "type": "share", "video_external_id": "ext-9", "timestamp": T},
        {
            "event_id": "a1",
            "type": "appeal",
            "video_external_id": "ext-9",
            "timestamp": "2026-05-01T10:00:00Z",
            "appeal_id": "A-7",
        },
    ]
    _post(rows, integration_token)
    stats = feedback_stats_for(video_id=video.pk)
    assert stats is not None
    assert (stats["views"], stats["reports"], stats["likes"], stats["dislikes"], stats["shares"]) == (10, 3, 4, 1, 1)
    assert stats["report_rate"] == 0.3 and stats["like_rate"] == 0.4 and stats["dislike_rate"] == 0.1
    assert stats["avg_watch_seconds"] == 20.0
    assert stats["top_report_reasons"] == ["scam", "spam"]
    assert stats["appeals"] == 1 and stats["appeal_outcome"] == "pending"

    # Later the platform decides the appeal: a new event for the same appeal id.
    _post(
        [
            {
                "event_id": "a2",
                "type": "appeal",
                "video_external_id": "ext-9",
                "timestamp": "2026-05-02T10:00:00Z",
                "appeal_id": "A-7",
                "outcome": "overturned",
            }
        ],
        integration_token,
    )
    stats = feedback_stats_for(video_id=video.pk)
    assert stats["appeals"] == 1 and stats["appeals_overturned"] == 1 and stats["appeals_pending"] == 0
    assert stats["appeal_outcome"] == "overturned"
    assert feedback_stats_for(video_id=VideoFactory().pk) is None


def test_user_session_and_user_token_are_refused_on_the_feedback_endpoint(client_as, make_user):
    VideoFactory(external_id="ext-1")
    event = [{"event_id": "x", "type": "like", "video_external_id": "ext-1", "timestamp": T}]
    admin_client = client_as("admin")
    assert admin_client.post(URL, event, content_type="application/json").status_code in (401, 403)
    key = api_token_issue(user=make_user("admin")).key
    resp = Client().post(URL, event, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
    assert resp.status_code in (401, 403)
    assert _post(event, "not-a-real-token").status_code == 401
    assert not FeedbackEvent.objects.exists()


def test_integration_token_sees_only_its_videos_and_is_refused_on_user_endpoints(integration_token):
    VideoFactory(external_id="someone-elses")
    resp = Client().get("/api/videos/", HTTP_AUTHORIZATION=f"Integration {integration_token}")
    assert resp.status_code == 200 and resp.json()["results"] == []
    resp = Client().get("/api/queues/", HTTP_AUTHORIZATION=f"Integration {integration_token}")
    assert resp.status_code in (401, 403, 404)
    resp = Client().post("/api/token/", HTTP_AUTHORIZATION=f"Integration {integration_token}")
    assert resp.status_code in (401, 403)


def test_revoked_integration_and_oversized_batch(integration_token):
    too_many = [{"event_id": str(i), "type": "like", "video_id": 1, "timestamp": T} for i in range(1001)]
    resp = _post(too_many, integration_token)
    assert resp.status_code == 400 and "At most 1000" in resp.json()["detail"]
    assert _post({"not": "a list"}, integration_token).status_code == 400
    Integration.objects.update(is_active=False)
    assert _post([], integration_token).status_code == 401


def test_create_integration_command_prints_the_token_once_and_stores_a_hash():
    out = io.StringIO()
    call_command("create_integration", "platform-x", stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip()
    integration = Integration.objects.get(name="platform-x")
    assert len(token) > 30 and token not in integration.token_hash and integration.token_prefix == token[:8]
    VideoFactory(external_id="ext-1")
    ok = _post([{"event_id": "1", "type": "share", "video_external_id": "ext-1", "timestamp": T}], token)
    assert ok.json()["accepted"] == 1


def test_feedback_reaches_the_prompt_and_the_baseline_user_feedback_stage(integration_token):
    video = VideoFactory(external_id="ext-5", title="cooking")
    rows = [
        {"event_id": f"w{i}", "type": "watch_time", "video_external_id": "ext-5", "timestamp": T, "seconds": 5}
        for i in range(20)
    ]
    rows += [
        {"event_id": f"r{i}", "type": "report", "video_external_id": "ext-5", "timestamp": T, "reason": "fraud"}
        for i in range(5)
    ]
    _post(rows, integration_token)
    bundle = content_bundle_for(video)
    assert bundle.feedback["views"] == 20 and bundle.feedback["report_rate"] == 0.25
    prompt = build_prompt(bundle, taxonomy=kuaimod_taxonomy(), safe_label="正向")
    assert "report_rate=0.25" in prompt.user and "views=20" in prompt.user
    result = EvidenceBaseline().decide(bundle, kuaimod_taxonomy(), "正向")
    stage = next(s for s in result.cot if s["key"] == "user_feedback")
    assert "20 views" in stage["text"] and "5 reports (report rate 25.0%)" in stage["text"] and "fraud" in stage["text"]
    empty = ContentBundle(title="t", description="", uploader="", segments=[], frames=[])
    assert (
        "No user-feedback events"
        in next(
            s for s in EvidenceBaseline().decide(empty, kuaimod_taxonomy(), "正向").cot if s["key"] == "user_feedback"
        )["text"]
    )
    assert "no user feedback recorded" in build_prompt(empty, taxonomy=kuaimod_taxonomy(), safe_label="正向").user


def test_target_label_is_stated_in_the_prompt():
    empty = ContentBundle(title="t", description="", uploader="", segments=[], frames=[], target_label="引导私下交易")
    assert (
        "labelled this video '引导私下交易'" in build_prompt(empty, taxonomy=kuaimod_taxonomy(), safe_label="正向").user
    )


def test_lone_surrogates_are_stored_replaced_and_too_deep_json_is_a_400(integration_token):
    video = VideoFactory()
    row = {"event_id": "s\ud800", "type": "report", "video_id": video.pk, "timestamp": T, "reason": "a\udfff\x00b"}
    body = json.dumps([row])  # lone surrogates travel as "\\ud800" escapes
    resp = _post(body, integration_token)
    assert resp.status_code == 200, resp.content
    assert resp.json()["accepted"] == 1
    event = FeedbackEvent.objects.get()
    assert (event.event_id, event.reason) == ("s\ufffd", "a\ufffd\ufffdb")  # NUL too: stored, not refused

    resp = _post("[" * 5000 + "]" * 5000, integration_token)
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["detail"]


def test_a_signed_in_user_trying_the_endpoint_is_told_it_takes_an_integration_token(make_user, integration_token):
    """Walked from /api/docs/ ("Try it out", signed in): the answer was 401 "Authentication credentials were not
    provided." to a user who had provided their session; it names the credential the endpoint takes."""
    video = VideoFactory()
    client = Client()
    client.force_login(make_user("admin"))
    event = [{"event_id": "e-1", "type": "report", "video_id": video.pk, "timestamp": T}]
    refused = client.post(URL, event, content_type="application/json")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Integration"
    detail = refused.json()["detail"]
    assert detail.startswith("This endpoint takes an integration token (Authorization: Integration <token>).")
    assert "A signed-in session or a user's API token is not accepted here" in detail
    assert not FeedbackEvent.objects.exists()
    assert _post(event, integration_token).json()["accepted"] == 1
