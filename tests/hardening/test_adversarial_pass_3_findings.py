"""Findings of the third adversarial pass, each pinned by a test that fails without its fix."""

from __future__ import annotations

import importlib
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from annotation.forms import LabelStudioQueueExportForm
from annotation.labelstudio import labelstudio_import_project
from moderation.feedback.models import FeedbackEvent
from moderation.inference.services import model_version_promote
from moderation.integrations.models import EventType, Integration, IntegrationVideo, OutboxEvent, WebhookDelivery
from moderation.integrations.services import integration_create
from moderation.integrations.targets import WebhookTargetRefused, webhook_target_addresses
from moderation.integrations.webhooks import event_body, outbox_dispatch, webhook_delivery_send, webhook_endpoint_create
from moderation.media.pipeline import video_fail
from moderation.models import Video
from moderation.review.models import Review, ReviewQueue, ReviewTask
from moderation.tagging.models import Tag, VideoTag
from moderation.tagging.services import tags_import
from tests.factories import DecisionFactory, ModelVersionFactory, VideoFactory
from workbench.signin import signin_address

pytestmark = pytest.mark.django_db

T = "2026-05-01T12:00:00Z"
CLIP = b"\x00\x00\x00\x18ftypmp42" + b"a" * 2048
OTHER_CLIP = b"\x00\x00\x00\x18ftypmp42" + b"b" * 2048


def _platform(name: str) -> APIClient:
    integration, token = integration_create(name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    client.integration = integration  # type: ignore[attr-defined]
    return client


def _submit(client: APIClient, payload: bytes, external_id: str):  # type: ignore[no-untyped-def]
    data = {"file": SimpleUploadedFile("clip.mp4", payload), "external_id": external_id, "title": "t"}
    return client.post("/api/videos/", data, format="multipart")


def test_two_platforms_use_the_same_external_id_and_neither_sees_nor_touches_the_others_video():
    """External ids were one namespace for every platform: B sending A's id was refused with "already belongs to
    a different video file" (a probe of A's ids, and B could not use its own id scheme); B's feedback events by
    external id were resolved in the shared namespace; and B, submitting the same bytes under its own id, was
    shown A's id for the video (API and webhooks)."""
    a, b, c = _platform("platform-a"), _platform("platform-b"), _platform("platform-c")
    mine = _submit(a, CLIP, "x-1")
    theirs = _submit(b, OTHER_CLIP, "x-1")
    assert mine.status_code == 201 and theirs.status_code == 201, theirs.content
    a_id, b_id = mine.json()["id"], theirs.json()["id"]
    assert a_id != b_id and mine.json()["external_id"] == theirs.json()["external_id"] == "x-1"

    # B can neither read A's video nor its verdict; the lists hold only B's own.
    assert b.get(f"/api/videos/{a_id}/").status_code == 404
    assert b.get(f"/api/videos/{a_id}/verdict").status_code == 404
    assert [v["id"] for v in b.get("/api/videos/").json()["results"]] == [b_id]
    assert b.get(f"/api/videos/{b_id}/verdict").json()["external_id"] == "x-1"

    # B's feedback about "x-1" is about B's video, A's about A's.
    report = {"type": "report", "timestamp": T, "reason": "scam", "video_external_id": "x-1"}
    for client, event_id in ((b, "from-b"), (a, "from-a")):
        body = client.post("/api/feedback/events/", [{**report, "event_id": event_id}], format="json").json()
        assert body["accepted"] == 1, body
    assert dict(FeedbackEvent.objects.values_list("event_id", "video_id")) == {"from-b": b_id, "from-a": a_id}

    # A's id names one video of A's: other bytes under it are refused (in A's own words), nothing stored.
    again = _submit(a, OTHER_CLIP + b"!", "x-1")
    assert again.status_code == 400 and "already names another of your videos" in again.json()["detail"]
    assert Video.objects.count() == 2
    assert _submit(a, CLIP, "x-1").json()["id"] == a_id  # the same bytes again: the same video

    # B sends A's bytes under its own id: B knows the video by B's id, never by A's, in the API and in webhooks.
    shared = _submit(b, CLIP, "b-7")
    assert shared.status_code == 201 and shared.json() | {"id": a_id} == shared.json()
    assert shared.json()["external_id"] == "b-7"
    assert b.get(f"/api/videos/{a_id}/").json()["external_id"] == "b-7"
    assert a.get(f"/api/videos/{a_id}/").json()["external_id"] == "x-1"
    event = OutboxEvent.objects.create(
        type=EventType.LABEL_FINAL, video_id=a_id, payload={"video_id": a_id, "external_id": None, "label": "ok"}
    )
    for client, shown in ((a, "x-1"), (b, "b-7"), (c, None)):
        body = event_body(event, integration_id=client.integration.pk)  # type: ignore[attr-defined]
        assert json.loads(body)["data"]["external_id"] == shown


def test_the_migration_moves_platform_external_ids_to_their_integration_and_back():
    """Existing rows keep their ids: a platform's (an upload with no user) moves to the first submitter's link and
    leaves the shared namespace; a user's upload or an import keeps its own."""
    migration = importlib.import_module("moderation.migrations.0031_external_id_per_integration")
    a, b = integration_create(name="platform-a")[0], integration_create(name="platform-b")[0]
    platform_video = VideoFactory(external_id="p-1", source=Video.Source.UPLOAD, created_by=None)
    imported = VideoFactory(external_id="m-1", source=Video.Source.MANIFEST)
    first = IntegrationVideo.objects.create(integration=a, video=platform_video)
    later = IntegrationVideo.objects.create(integration=b, video=platform_video)
    IntegrationVideo.objects.create(integration=b, video=imported)  # B uploaded the manifest's bytes too
    with connection.cursor() as cur:
        cur.execute(migration.MOVE_TO_LINKS)
        cur.execute(migration.CLEAR_FROM_VIDEOS)
    links = dict(IntegrationVideo.objects.values_list("pk", "external_id"))
    assert links[first.pk] == "p-1" and links[later.pk] is None and set(links.values()) == {"p-1", None}
    assert dict(Video.objects.values_list("pk", "external_id")) == {platform_video.pk: None, imported.pk: "m-1"}

    with connection.cursor() as cur:
        cur.execute(migration.MOVE_BACK)
    assert dict(Video.objects.values_list("pk", "external_id")) == {platform_video.pk: "p-1", imported.pk: "m-1"}


def _closed_port_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on: a command that gets as far as Label Studio says so
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_the_label_studio_command_exports_only_queues_its_user_may_see(make_user, policy_version):
    """`manage.py labelstudio export --queue X` exported any queue's open items (titles, videos, the model's label
    and reasoning), group-restricted and inactive ones too, and ran as nobody; the export screen offers a labeler
    only the queues open to them. The command now runs as `--as USER` under the screen's rule."""
    experts = Group.objects.create(name="experts")
    for slug in ("cmd-open", "cmd-restricted", "cmd-inactive"):
        queue = ReviewQueue.objects.create(slug=slug, name=slug, is_active=slug != "cmd-inactive")
        ReviewTask.objects.create(decision=DecisionFactory(policy_version=policy_version), queue=queue)
    ReviewQueue.objects.get(slug="cmd-restricted").allowed_groups.add(experts)
    labeler, expert, moderator = make_user("labeler"), make_user("labeler"), make_user("moderator")
    expert.groups.add(experts)
    url = _closed_port_url()

    def export(slug: str, user: object | None) -> str:
        args = ["labelstudio", "export", "--queue", slug, "--url", url, "--token", "t"]
        args += ["--as", user.username] if user is not None else []  # type: ignore[attr-defined]
        with pytest.raises(CommandError) as refused:
            call_command(*args)
        return str(refused.value)

    assert "export needs --as USERNAME" in export("cmd-open", None)
    for slug, user in (("cmd-restricted", labeler), ("cmd-inactive", labeler), ("cmd-inactive", expert)):
        assert f"No review queue “{slug}” that {user.username} may export" in export(slug, user)
    assert f"No review queue “cmd-open” that {moderator.username} may export" in export("cmd-open", moderator)
    # Past the rule, as far as Label Studio (not running here).
    assert "Cannot reach Label Studio" in export("cmd-open", labeler)
    assert "Cannot reach Label Studio" in export("cmd-restricted", expert)
    # The screen's list is the same rule.
    form = LabelStudioQueueExportForm(user=labeler)
    assert set(form.fields["queue"].queryset.values_list("slug", flat=True)) >= {"cmd-open"}  # type: ignore[attr-defined]
    assert not {"cmd-restricted", "cmd-inactive"} & set(
        form.fields["queue"].queryset.values_list("slug", flat=True)  # type: ignore[attr-defined]
    )


def test_a_label_studio_import_records_reviews_only_where_its_user_may_review(make_user, policy_version):
    """The import recorded a review (and so a trusted label and a label.final event) as the `--as` user on any
    open task of the decision, in a restricted queue or for a user with no reviewer role at all."""
    experts = Group.objects.create(name="experts")
    restricted = ReviewQueue.objects.create(slug="imp-restricted", name="restricted")
    restricted.allowed_groups.add(experts)
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    ReviewTask.objects.create(decision=decision, queue=restricted)
    task = SimpleNamespace(
        id=1,
        data={"decision_id": decision.pk},
        annotations=[
            {
                "id": 11,
                "result": [
                    {"from_name": "label", "type": "choices", "value": {"choices": ["引导私下交易"]}},
                    {"from_name": "severity", "type": "choices", "value": {"choices": ["medium"]}},
                ],
            }
        ],
    )
    client = SimpleNamespace(tasks=SimpleNamespace(list=lambda **_: [task]))

    outsider = make_user("moderator")
    result = labelstudio_import_project(client=client, ls_url="http://ls.test", project_id=3, by=outsider)
    # Refused before any queue is looked at since hadv15: the decision's video is hidden from them.
    assert result.outcomes[0]["result"] == f"refused: video {decision.video_id} is not open to {outsider.username}"
    assert not Review.objects.exists()

    insider = make_user("moderator")
    insider.groups.add(experts)
    task.annotations[0]["id"] = 12
    result = labelstudio_import_project(client=client, ls_url="http://ls.test", project_id=3, by=insider)
    assert result.outcomes[0]["result"] == "review" and Review.objects.get().reviewer_id == insider.pk


@pytest.mark.parametrize(
    ("literal", "reached"),
    [
        ("64:ff9b::a9fe:a9fe", "link-local address (cloud metadata services live there) reached through IPv6 translation (169.254.169.254)"),
        ("64:ff9b:1::a00:5", "private-network address reached through IPv6 translation (10.0.0.5)"),
        ("2002:7f00:1::1", "loopback address reached through IPv6 translation (127.0.0.1)"),
        ("::a00:5", "private-network address reached through IPv6 translation (10.0.0.5)"),
    ],
)  # fmt: skip
def test_a_webhook_target_is_refused_when_its_ipv6_address_carries_an_internal_ipv4_one(settings, literal, reached):
    """Python calls NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and IPv4-compatible (::/96) addresses
    global, so a webhook to http://[64:ff9b::a9fe:a9fe]/ passed the target check: on a NAT64 network (IPv6-only
    clusters) that is the cloud metadata service, and 64:ff9b::a00:5 a private host."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(WebhookTargetRefused) as refused:
        webhook_target_addresses(f"http://[{literal}]/hook")
    assert reached in str(refused.value)
    assert webhook_target_addresses("http://[64:ff9b::5db8:d822]/hook") == ["64:ff9b::5db8:d822"]  # 93.184.216.34


def test_a_vocabulary_line_with_thousands_of_aliases_is_refused_not_deduplicated_for_days():
    """An import line's aliases had no limit and were de-duplicated with a list scan (quadratic): one line of 40,000
    aliases (270 KB) took 16 s, a 50 MB file's line days of the default queue's worker, for a policy editor."""
    many = ",".join(f"a{i}" for i in range(40_000))
    hundred = ",".join(f"b{i}" for i in range(100))
    others = ",".join(f"d{i}" for i in range(100))  # an alias is one tag's: "ok" may not take scam's
    report = tags_import(
        lines=[f"spam\t{many}", f"scam\t{hundred}", "scam\textra", f"ok\t{others}, {others}", "fine\tx"]
    )
    assert report.errors == [
        "line 1: 40,000 aliases; a tag has at most 100",
        "line 3: “scam” with line 2's aliases: 101 aliases; a tag has at most 100",
    ]
    assert dict(Tag.objects.values_list("name", "aliases__len")) == {"scam": 100, "ok": 100, "fine": 1}
    later = tags_import(lines=["fine\t" + ",".join(f"c{i}" for i in range(100))])
    assert later.errors == ["line 1: “fine” with the aliases it has: 101 aliases; a tag has at most 100"]
    assert Tag.objects.get(name="fine").aliases == ["x"]


def test_wrong_passwords_are_throttled_per_account_and_address_on_both_sign_in_pages(make_user):
    """Sign-in had no limit: a password could be guessed at the server's speed, on /login/ and /admin/login/."""
    name = f"target-{uuid.uuid4().hex[:8]}"
    make_user("admin", username=name, password="right-horse-battery")
    attacker, owner = Client(REMOTE_ADDR="203.0.113.9"), Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(10):
        page = attacker.post("/login/", {"username": name, "password": "guess"}).content.decode()
        assert "Wrong username or password." in page
    for url in ("/login/", "/admin/login/"):
        refused = attacker.post(url, {"username": name, "password": "right-horse-battery"})
        assert refused.status_code == 200 and "Too many wrong passwords from here" in refused.content.decode()
    assert "_auth_user_id" not in attacker.session
    # The account's owner, elsewhere, is not locked out by someone else's guesses.
    assert owner.post("/login/", {"username": name, "password": "right-horse-battery"}).status_code == 302


def test_behind_the_proxy_sign_in_counts_the_address_the_proxy_saw(settings):
    """Behind the TLS proxy every request's peer is the proxy: counted by it, ten wrong guesses by anyone would
    have paused the account for everyone. The address is the proxy's X-Forwarded-For entry (the last one)."""
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    settings.WORKBENCH_HTTPS = False
    assert signin_address(request) == "10.0.0.2"
    settings.WORKBENCH_HTTPS = True
    assert signin_address(request) == "203.0.113.9"


def test_a_webhook_receiver_answering_an_endless_body_does_not_hold_the_worker():
    """Deliveries read the receiver's whole response body into memory (only its status is used): a receiver that
    answers 200 with an endless (or 10 GB) body held the default queue's worker until it ran out of memory."""
    sent = {"bytes": 0}
    size = 128 * 1024 * 1024

    class Flood(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * (1024 * 1024)
            try:
                while sent["bytes"] < size:
                    self.wfile.write(chunk)
                    sent["bytes"] += len(chunk)
            except OSError:  # the sender hung up: what a receiver sees when its body is not wanted
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flood)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        integration, _ = integration_create(name="flooded")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        webhook_endpoint_create(integration=integration, url=url, event_types=["model.promoted"])
        model_version_promote(model_version=ModelVersionFactory(name="candidate-flood"))
        [delivery_id] = outbox_dispatch()
        assert webhook_delivery_send(delivery_id=delivery_id) == "delivered"
    finally:
        server.shutdown()
        server.server_close()
    assert sent["bytes"] < size // 4, f"the sender read {sent['bytes']:,} bytes of a body it does not use"


def test_a_platform_reads_why_its_video_failed_without_the_workbenchs_inside(make_user):
    """The verdict's and the video's `error` gave a platform the text of any exception a worker hit: database
    hosts and ports, object store names and paths, the model server's address."""
    a = _platform("platform-a")
    video_id = _submit(a, CLIP, "f-1").json()["id"]
    admin = APIClient()
    admin.force_authenticate(make_user("admin"))
    Video.objects.filter(pk=video_id).update(stage=Video.Stage.KEYFRAMES)
    internal = {
        'Processing failed unexpectedly: OperationalError: connection to server at "10.0.3.4", port 5432 failed': (
            "Processing failed on the workbench's side; its operators can see why and retry it."
        ),
        "This file system is read-only: [Errno 30] /srv/media/cache/x.jpg": (  # internal, whatever its wording
            "Processing failed on the workbench's side; its operators can see why and retry it."
        ),
    }
    for_sender = {
        "This file is not a playable video: ffprobe found no video stream.": (
            "This file is not a playable video: ffprobe found no video stream."
        ),
        "Your clip has no picture; send it with its video track.": (  # for the sender, whatever its wording
            "Your clip has no picture; send it with its video track."
        ),
    }
    cases = [(e, shown, False) for e, shown in internal.items()] + [(e, s, True) for e, s in for_sender.items()]
    for error, shown, written_for_sender in cases:
        video_fail(video_id=video_id, message=error, for_sender=written_for_sender)
        assert a.get(f"/api/videos/{video_id}/verdict").json()["error"] == shown
        assert a.get(f"/api/videos/{video_id}/").json()["error"] == shown
        assert a.get("/api/videos/").json()["results"][0]["error"] == shown
        assert admin.get(f"/api/videos/{video_id}/verdict").json()["error"] == error  # staff see all of it
    # Where it stopped, not its words, names the stage.
    for stage, shown in (
        (
            Video.Stage.INFERENCE,
            "Model inference failed on the workbench's side; its operators can see why and retry it.",
        ),
        (Video.Stage.ASR, "Speech to text failed on the workbench's side; its operators can see why and retry it."),
    ):
        video_fail(video_id=video_id, message="ConnectionError: host='vllm.internal', port=8000", for_sender=False)
        Video.objects.filter(pk=video_id).update(stage=stage)
        assert a.get(f"/api/videos/{video_id}/").json()["error"] == shown


def test_failures_before_the_flag_get_it_once_by_the_old_opening_words_rule():
    """The migration's data step: rows failed before ``error_for_sender`` existed are flagged by the rule the
    reader applied until then (a sender's messages began with these words), in one UPDATE."""
    from django.apps import apps

    migration = importlib.import_module("moderation.migrations.0035_video_error_for_sender")
    rows = {
        "This file is empty (0 bytes); please upload the video again.": True,
        "This video is damaged or incomplete: ffmpeg could not decode its pictures (exit code 1).": True,
        "The uploaded file is missing from media storage.": True,
        "Extracting keyframes took too long; the video may be damaged.": True,
        "Model inference failed: ConnectionError: host='vllm.internal'": False,
        "": False,
    }
    ids = {VideoFactory(error=error).pk: flagged for error, flagged in rows.items()}
    migration.flag_sender_errors(apps, None)
    assert dict(Video.objects.filter(pk__in=ids).values_list("pk", "error_for_sender")) == ids


def test_a_platform_sending_bytes_another_sent_first_does_not_read_that_platforms_metadata():
    """The same bytes are one video: platform B, sending what A had sent, was linked to A's video and read its
    title, description, uploader (A's user's handle) and stored name (A's file name)."""
    a, b = _platform("platform-a"), _platform("platform-b")
    data = {"title": "A's title", "description": "A's text", "uploader": "alice_handle", "external_id": "a-1"}
    first = a.post("/api/videos/", {"file": SimpleUploadedFile("alice-holiday.mp4", CLIP), **data}, format="multipart")
    video_id = first.json()["id"]
    second = b.post("/api/videos/", {"file": SimpleUploadedFile("b.mp4", CLIP), "title": "B's"}, format="multipart")
    assert second.json()["id"] == video_id
    for body in (second.json(), b.get(f"/api/videos/{video_id}/").json(), b.get("/api/videos/").json()["results"][0]):
        assert (body["title"], body["description"], body["uploader"], body["file"]) == ("", "", "", None)
        assert "alice" not in json.dumps(body)
    mine = a.get(f"/api/videos/{video_id}/").json()
    assert (mine["title"], mine["uploader"]) == ("A's title", "alice_handle") and "alice-holiday" in mine["file"]


def test_a_webhook_receiver_dripping_its_answer_is_cut_off_at_the_timeout(settings):
    """The HTTP timeout was per read: a receiver sending its status line one byte at a time, each inside the
    timeout, held the worker for as long as it liked (and every resend after the lease lapsed, another one)."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    hung_up = threading.Event()

    class Drip(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":  # 40 bytes, one every 0.2 s: 8 s
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                hung_up.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        integration, _ = integration_create(name="dripping")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        webhook_endpoint_create(integration=integration, url=url, event_types=["model.promoted"])
        model_version_promote(model_version=ModelVersionFactory(name="candidate-drip"))
        [delivery_id] = outbox_dispatch()
        assert webhook_delivery_send(delivery_id=delivery_id) == "retrying"
    finally:
        server.shutdown()
        server.server_close()
    error = WebhookDelivery.objects.get(pk=delivery_id).last_error
    assert error == "Timeout: The receiver did not answer within 1 s.", error


def test_readyz_tells_anyone_whether_it_is_ready_and_only_operators_why(settings):
    """/readyz answers without sign-in (probes) and gave each failing check's error text: with the database or
    broker down, anyone on the internet read its host, address and port (and the workers' host names)."""
    with socket.socket() as probe:  # a broker address nothing answers on
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_CLIENT_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    settings.METRICS_TOKEN = "scrape-secret"
    anonymous = Client().get("/readyz")
    assert anonymous.status_code == 503 and "127.0.0.1" not in anonymous.content.decode()
    assert anonymous.json()["checks"]["broker"] == {"ok": False}
    operator = Client(HTTP_AUTHORIZATION="Bearer scrape-secret").get("/readyz").json()
    assert "127.0.0.1" in operator["checks"]["broker"]["error"]


def test_a_platform_is_never_told_which_moderator_tagged_its_video(make_user):
    """The video API's tags named the reviewer who added each (`added_by`) and the `tags.final` webhook the one
    who finalised them (`by`): moderators' user names went out to every platform."""
    a = _platform("platform-a")
    video_id = _submit(a, CLIP, "t-1").json()["id"]
    tags_import(lines=["cat"])
    reviewer = make_user("moderator", username="mod_alice")
    VideoTag.objects.create(video_id=video_id, tag=Tag.objects.get(name="cat"), added_by=reviewer)
    event = OutboxEvent.objects.create(
        type=EventType.TAGS_FINAL, video_id=video_id, payload={"video_id": video_id, "tags": ["cat"], "by": "mod_alice"}
    )
    assert a.get(f"/api/videos/{video_id}/").json()["tags"][0]["added_by"] is None
    body = event_body(event, integration_id=a.integration.pk)  # type: ignore[attr-defined]
    assert "mod_alice" not in body.decode() and json.loads(body)["data"]["tags"] == ["cat"]
    staff = APIClient()
    staff.force_authenticate(make_user("admin"))
    assert staff.get(f"/api/videos/{video_id}/").json()["tags"][0]["added_by"] == "mod_alice"


def test_an_integration_switched_off_hears_nothing_more():
    """Switching an integration off refused its token, but its webhook endpoints went on receiving every event
    (and deliveries already queued were sent): a revoked platform still heard about videos and models."""
    integration, _ = integration_create(name="revoked")
    endpoint, _secret = webhook_endpoint_create(
        integration=integration, url="http://127.0.0.1:9/hook", event_types=["model.promoted"]
    )
    model_version_promote(model_version=ModelVersionFactory(name="candidate-before"))
    [queued] = outbox_dispatch()
    Integration.objects.filter(pk=integration.pk).update(is_active=False)

    assert webhook_delivery_send(delivery_id=queued) == "endpoint-disabled"
    model_version_promote(model_version=ModelVersionFactory(name="candidate-after"))
    assert outbox_dispatch() == [] and endpoint.deliveries.count() == 1


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_read(settings):
    """A video over WORKBENCH_UPLOAD_MAX_BYTES was refused only after Django had streamed all of it to a temporary
    file (the form is read before any view sees it): a 50 GB POST filled the server's disk first."""
    settings.WORKBENCH_UPLOAD_MAX_BYTES = 1024 * 1024
    a = _platform("platform-a")
    small = SimpleUploadedFile("clip.mp4", CLIP)
    declared = 50 * 1024**3  # what the client says it will send: nothing of it is read
    refused = a.post("/api/videos/", {"file": small}, format="multipart", CONTENT_LENGTH=str(declared))
    assert refused.status_code == 413, refused.content[:200]
    assert f"This request is {declared:,} bytes" in refused.content.decode() and not Video.objects.exists()
    assert _submit(a, CLIP, "fits").status_code == 201


def test_an_api_body_over_the_size_limit_is_told_so_in_json():
    """A JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE (10 MB) got Django's HTML 'Bad Request (400)' page with no
    reason: a platform's client could not tell what to change."""
    a = _platform("platform-a")
    big = json.dumps([{"event_id": str(i), "type": "like", "pad": "x" * 1000} for i in range(11_000)])
    refused = a.post("/api/feedback/events/", big, content_type="application/json")
    assert refused.status_code == 413 and refused.json()["detail"].startswith(
        "The request's fields are larger than 10 MB"
    )


def test_sign_in_still_works_while_the_shared_cache_is_unreachable(make_user, settings):
    """The throttle's count lives in Redis: with Redis down every sign-in was a server error (a 500 for everyone);
    it now goes on without the throttle."""
    name = f"user-{uuid.uuid4().hex[:8]}"
    make_user("moderator", username=name, password="right-horse-battery")
    settings.CACHES = {
        **settings.CACHES,
        # The discard port: nothing answers.
        "throttle": {**settings.REDIS_SHARED_CACHE, "LOCATION": "redis://127.0.0.1:9/0"},
    }
    client = Client(REMOTE_ADDR="198.51.100.8")
    wrong = client.post("/login/", {"username": name, "password": "guess"})
    assert wrong.status_code == 200 and "Wrong username or password." in wrong.content.decode()
    assert client.post("/login/", {"username": name, "password": "right-horse-battery"}).status_code == 302
