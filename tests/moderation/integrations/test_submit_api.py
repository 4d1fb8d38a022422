"""Submit-and-verdict API for platforms: idempotent submit, verdict, pull sync, rate limits."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.integrations.models import IdempotencyKey, IntegrationVideo
from moderation.integrations.services import integration_create
from moderation.models import Decision, ItemLabel, Video
from tests.factories import DecisionFactory, ReviewTaskFactory, TagTaskFactory, VideoFactory

PAYLOAD = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096


def _submit(client: APIClient, key: str | None = None, **fields):  # type: ignore[no-untyped-def]
    data = {"file": SimpleUploadedFile("clip.mp4", fields.pop("payload", PAYLOAD)), "external_id": "p-1", **fields}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/videos/", data, format="multipart", **headers)


@pytest.mark.django_db(transaction=True)
def test_retried_submit_returns_the_first_result_and_a_reused_key_for_another_request_is_refused(platform):
    first = _submit(platform, key="k-1", title="Cat video", comments=["nice", "lol"])
    assert first.status_code == 201, first.content
    again = _submit(platform, key="k-1", title="Cat video", comments=["nice", "lol"])
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    video = Video.objects.get()
    assert (
        IntegrationVideo.objects.get(video=video).external_id == "p-1"
        and video.title == "Cat video"
        and video.comments == ["nice", "lol"]
    )

    changed = _submit(platform, key="k-1", title="Another title")
    assert changed.status_code == 422 and "different request" in changed.json()["detail"]
    assert Video.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    platform.integration.refresh_from_db()
    assert platform.integration.last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_identical_posts_make_one_video_and_one_answer(platform):
    barrier = threading.Barrier(2)
    responses: list = []

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=platform._credentials["HTTP_AUTHORIZATION"])
        barrier.wait()
        try:
            responses.append(_submit(client, key="same-key", title="Race"))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in responses] == [201, 201], [r.content for r in responses]
    assert responses[0].json()["id"] == responses[1].json()["id"]
    # One request made it, the other waited on the key and replayed its result.
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert Video.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    assert IntegrationVideo.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_submit_by_server_path_is_confined_to_the_import_roots(platform, tmp_path, settings):
    root = tmp_path / "imports"
    own = root / platform.integration.import_folder  # a platform reads its own folder of the import roots
    own.mkdir(parents=True)
    (own / "a.mp4").write_bytes(PAYLOAD)
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(PAYLOAD + b"x")
    settings.MEDIA_IMPORT_ROOTS = [str(root)]

    ok = platform.post("/api/videos/", {"path": str(own / "a.mp4"), "external_id": "srv-1"}, format="json")
    assert ok.status_code == 201, ok.content
    assert IntegrationVideo.objects.get().external_id == "srv-1"
    for bad in (str(outside), str(own / ".." / ".." / "secret.mp4")):
        resp = platform.post("/api/videos/", {"path": bad}, format="json")
        assert resp.status_code == 400 and "outside this integration's import folder" in resp.json()["detail"]
    assert platform.post("/api/videos/", {"title": "nothing"}, format="json").status_code == 400
    assert Video.objects.count() == 1


def test_verdict_follows_model_review_and_adjudication_and_is_scoped_to_the_submitter(platform, other_platform):
    video = VideoFactory(external_id="v-9")
    IntegrationVideo.objects.create(integration=platform.integration, video=video)
    url = f"/api/videos/{video.pk}/verdict"

    body = platform.get(url).json()
    assert body["status"] == "processing" and body["final"] is False and body["label"] is None

    decision = DecisionFactory(video=video, label="引导私下交易", is_violation=True)
    body = platform.get(url).json()
    assert body["status"] == "auto" and body["final"] is True and body["source"] == "model"
    assert body["label"] == "引导私下交易" and body["is_violation"] is True
    assert body["policy_version"] == str(decision.policy_version)

    task = ReviewTaskFactory(decision=decision)
    body = platform.get(url + "/").json()
    assert body["status"] == "in_review" and body["final"] is False and body["open_review_tasks"] == 1

    task.status = "done"
    task.save()
    ItemLabel.objects.create(
        video=video, label="正向", source=ItemLabel.Source.REVIEW, policy_version=decision.policy_version
    )
    body = platform.get(url).json()
    assert (body["status"], body["final"], body["label"], body["is_violation"]) == ("reviewed", True, "正向", False)

    ItemLabel.objects.create(
        video=video, label="引导私下交易", source=ItemLabel.Source.ADJUDICATION, policy_version=decision.policy_version
    )
    body = platform.get(url).json()
    assert (body["status"], body["source"], body["label"]) == ("adjudicated", "adjudication", "引导私下交易")

    assert other_platform.get(url).status_code == 404


def test_a_pending_content_tags_item_keeps_no_reviewed_verdict_open(platform):
    """Tagging is other work: the video's tags item, still waiting, neither makes a reviewed verdict "in_review"
    nor counts as an open review item (the platform waited for a final verdict that existed)."""
    video = VideoFactory(external_id="v-tags")
    IntegrationVideo.objects.create(integration=platform.integration, video=video)
    decision = DecisionFactory(video=video, label="正向")
    ReviewTaskFactory(decision=decision, status="done")
    TagTaskFactory(decision=decision)  # pending in Content tags
    ItemLabel.objects.create(
        video=video, label="引导私下交易", source=ItemLabel.Source.REVIEW, policy_version=decision.policy_version
    )
    body = platform.get(f"/api/videos/{video.pk}/verdict/").json()
    assert (body["status"], body["final"], body["open_review_tasks"]) == ("reviewed", True, 0)
    assert body["label"] == "引导私下交易" and body["source"] == "review"


def test_decisions_and_labels_pull_sync_with_since_and_a_cursor(platform, other_platform, policy_version):
    now = timezone.now()
    mine = []
    for i in range(3):
        video = VideoFactory()
        IntegrationVideo.objects.create(integration=platform.integration, video=video, external_id=f"mine-{i}")
        mine.append(DecisionFactory(video=video, policy_version=policy_version))
        ItemLabel.objects.create(video=video, label="正向", source=ItemLabel.Source.REVIEW)
    DecisionFactory(policy_version=policy_version)  # someone else's video
    Decision.objects.filter(pk=mine[0].pk).update(created_at=now - timedelta(days=2))
    ItemLabel.objects.filter(video=mine[0].video).update(updated_at=now - timedelta(days=2))

    since = (now - timedelta(days=1)).isoformat()
    seen, url = [], f"/api/decisions/?since={since}&page_size=1"
    while url:
        page = platform.get(url).json()
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == [mine[1].pk, mine[2].pk]  # oldest first, only since, only mine

    labels = platform.get("/api/labels/", {"since": since}).json()["results"]
    assert [row["external_id"] for row in labels] == ["mine-1", "mine-2"]
    assert other_platform.get("/api/labels/").json()["results"] == []
    bad = platform.get("/api/decisions/", {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()
    # Offsets PostgreSQL would refuse are taken in UTC; a year that overflows is a 400 (found by fuzzing).
    assert platform.get("/api/decisions/", {"since": "1709-10-12T00:01:32+22:18"}).status_code == 200
    assert platform.get("/api/labels/", {"since": "0001-01-01T00:00:00+05:00"}).status_code == 400
    # ?video= filters labels like decisions; an empty or bad value is a 400 that says so, never ignored.
    one = platform.get("/api/labels/", {"video": mine[1].video_id}).json()["results"]
    assert [row["external_id"] for row in one] == ["mine-1"]
    for endpoint in ("/api/labels/", "/api/decisions/"):
        for bad_video in ("", "abc", "１"):
            refused = platform.get(endpoint, {"video": bad_video})
            assert refused.status_code == 400 and "Expected a video id" in str(refused.json()["video"])


def test_over_the_rate_limit_is_429_with_retry_after(db):
    integration, token = integration_create(name="slow-platform", rate_limit="3/min")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    codes = [client.get("/api/labels/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    blocked = client.get("/api/decisions/")
    assert blocked.status_code == 429 and 0 < int(blocked["Retry-After"]) <= 60
    # Another integration has its own budget.
    _other, other_token = integration_create(name="fast-platform")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Integration {other_token}")
    assert other.get("/api/labels/").status_code == 200


def test_openapi_schema_documents_the_integration_routes(client_as):
    schema = client_as("moderator").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert "/api/videos/{id}/verdict" in paths or "/api/videos/{id}/verdict/" in paths
    assert "/api/labels/" in paths and "since" in str(paths["/api/labels/"])
    post = paths["/api/videos/"]["post"]
    assert "Idempotency-Key" in str(post["parameters"]) and "429" in post["responses"]
    assert "Integration" in str(schema["components"].get("securitySchemes", {}))


def test_with_redis_unreachable_the_api_answers_without_the_rate_limit(db, monkeypatch, settings):
    """The rate limit's count lives in Redis: with Redis down every integration request was a 500."""
    from moderation.integrations.api import IntegrationRateThrottle

    settings.CACHES = {  # the discard port: nothing answers
        **settings.CACHES,
        "unreachable": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
            "KEY_PREFIX": "wb",
        },
    }
    monkeypatch.setattr(IntegrationRateThrottle, "cache_alias", "unreachable")
    _integration, token = integration_create(name="platform-during-outage", rate_limit="3/min")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    assert [client.get("/api/labels/").status_code for _ in range(4)] == [200, 200, 200, 200]


def test_the_api_root_answers_an_integration_token_with_its_endpoints(platform):
    # With a valid integration token the root said "Authentication credentials were not provided." (403).
    response = platform.get("/api/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert set(response.json()) == {"videos", "decisions", "labels"}
    anonymous = APIClient().get("/api/", HTTP_ACCEPT="application/json")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"  # no credentials sent
    # A wrong token is a 401 with its code on every route, as an expired or switched-off one: it was a 403 here
    # and on /api/videos/ (behind the session's authentication) but a 401 on /api/feedback/events/.
    for url in ("/api/", "/api/videos/", "/api/feedback/events/"):
        wrong = APIClient(HTTP_AUTHORIZATION="Integration not-a-token").get(url, HTTP_ACCEPT="application/json")
        assert wrong.status_code == 401 and wrong.json() == {
            "detail": "Invalid integration token.",
            "code": "invalid_token",
        }
        assert wrong["WWW-Authenticate"].startswith("Integration")


def test_an_integration_token_reads_the_openapi_schema_of_the_api_it_calls(platform):
    # /api/ took the token, /api/schema/ refused it (403): a platform could not read the API's description.
    response = platform.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content
    assert "/api/videos/" in response.json()["paths"]
    assert APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").status_code in (401, 403)
    wrong = APIClient(HTTP_AUTHORIZATION="Integration not-a-token").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert wrong.status_code in (401, 403) and wrong.json()["detail"] == "Invalid integration token."


@pytest.mark.django_db(transaction=True)
def test_the_same_bytes_sent_again_say_they_are_a_copy_of_the_platforms_earlier_video(platform):
    """A new submission of bytes the platform had sent answered 201 with the earlier video's title and external
    id, as if the new request had been stored: the platform was not told its new metadata went nowhere."""
    first = _submit(platform, title="Cat video", description="first", external_id="p-1")
    assert first.status_code == 201 and "duplicate_of" not in first.json()
    again = _submit(platform, title="Cat video (re-edit)", description="first", external_id="p-2")

    assert again.status_code == 200, again.content
    body = again.json()
    assert body["id"] == first.json()["id"] and body["duplicate_of"] == {"id": body["id"], "external_id": "p-1"}
    assert body["detail"] == (
        f"This file is a copy of your video #{body['id']} (external id 'p-1'), sent before: it was not stored "
        "or processed again. This request's title and external id 'p-2' were not recorded; the video keeps "
        "what you sent first."
    )
    assert (body["title"], body["external_id"]) == ("Cat video", "p-1")
    assert Video.objects.count() == 1 and IntegrationVideo.objects.get().external_id == "p-1"

    # A retry of that request with a key is answered the same way, and a replay of it repeats the answer.
    keyed = _submit(platform, key="k-copy", title="Cat video", external_id="p-1")
    assert keyed.status_code == 200 and keyed.json()["detail"].endswith(
        "sent before: it was not stored or processed again."
    )
    replay = _submit(platform, key="k-copy", title="Cat video", external_id="p-1")
    assert replay.status_code == 200 and replay.json() == keyed.json() and replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_the_video_list_filters_by_external_id_each_caller_its_own(platform, other_platform, client_as):  # type: ignore[no-untyped-def]
    """?external_id= was ignored: a platform looking up its id "p-1" got every video it had sent."""
    mine = _submit(platform, external_id="p-1").json()["id"]
    _submit(platform, external_id="p-2", payload=PAYLOAD + b"2")
    theirs = _submit(other_platform, external_id="p-1", payload=PAYLOAD + b"3").json()["id"]
    imported = VideoFactory(external_id="m-1")  # the workbench's own namespace (a manifest import)

    def ids(client, value):  # type: ignore[no-untyped-def]
        return [v["id"] for v in client.get("/api/videos/", {"external_id": value}).json()["results"]]

    assert ids(platform, "p-1") == [mine] and ids(other_platform, "p-1") == [theirs]
    assert ids(other_platform, "p-2") == []  # another platform's id names nothing of its own
    assert ids(platform, "m-1") == []
    assert platform.get("/api/videos/", {"external_id": ""}).status_code == 400  # empty: refused, never every video
    assert platform.get("/api/videos/").json()["count"] == 2  # left out: no filter
    # A user's list: the workbench's own ids (a platform's are its own). An admin, who sees every video (those
    # not decided yet included: a moderator sees them once routed), so only the id's namespace leaves p-1 out.
    staff = client_as("admin")
    assert [v["id"] for v in staff.get("/api/videos/", {"external_id": "m-1"}).json()["results"]] == [imported.pk]
    assert staff.get("/api/videos/", {"external_id": "p-1"}).json()["results"] == []


def _response_schema(schema: dict, path: str, method: str, status: str) -> dict:
    """The documented body of one response as JSON Schema, its ``$ref``s resolved and no property beyond
    the documented ones allowed, so that a field the answer has and the schema leaves out shows."""
    components = schema["components"]["schemas"]

    def resolve(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(components[node["$ref"].rsplit("/", 1)[1]])
            node = {key: resolve(value) for key, value in node.items()}
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
            if node.pop("nullable", False):  # OpenAPI 3.0's spelling of JSON Schema's null type
                return {"anyOf": [node, {"type": "null"}]}
            return node
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    content = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return resolve(content)


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_submit_answers_what_the_schema_documents_for_it(platform):
    """The 200 for bytes sent before carries `duplicate_of` and `detail`: a client generated from the schema
    (documented as a plain Video) dropped both, and the integrator never learnt the video was a copy."""
    import jsonschema

    schema = platform.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    first = _submit(platform, external_id="dup-1")
    again = _submit(platform, external_id="dup-2", title="Other title")
    assert first.status_code == 201 and again.status_code == 200, again.content
    assert again.json()["duplicate_of"] == {"id": first.json()["id"], "external_id": "dup-1"}
    jsonschema.validate(again.json(), _response_schema(schema, "/api/videos/", "post", "200"))
    jsonschema.validate(first.json(), _response_schema(schema, "/api/videos/", "post", "201"))


def test_the_schema_documents_the_submitted_file_as_bytes_not_a_url(platform):
    """`file` read as a `uri` string: an integrator (or a generated client) sent `{"file": "https://…"}`."""
    schema = platform.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"]["/api/videos/"]["post"]["requestBody"]["content"]
    submit = schema["components"]["schemas"][body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert submit["properties"]["file"]["format"] == "binary"


def test_a_nul_in_an_api_query_is_refused_in_json_naming_the_parameter(platform):
    """`?external_id=a%00b` was answered 400 in text/plain: the platform's client, which parses every /api/
    answer as JSON, failed on decoding and never showed the reason."""
    refused = platform.get("/api/videos/", {"external_id": "a\x00b"})
    assert refused.status_code == 400 and refused["Content-Type"] == "application/json"
    assert "NUL" in refused.json()["detail"] and "external_id" in refused.json()["detail"]
    since = platform.get("/api/decisions/", {"since": "2026\x00"})
    assert since.status_code == 400 and "since" in since.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_an_empty_external_id_or_tag_filter_is_refused_not_ignored(platform):
    """`?external_id=` from an unset variable listed every video of the platform, and its client took the first
    result for the video it had asked about."""
    _submit(platform, external_id="e-1")
    _submit(platform, external_id="e-2", payload=PAYLOAD + b"2")
    for query in ("external_id=", "external_id=%20", "tag="):
        refused = platform.get(f"/api/videos/?{query}")
        name = query.split("=")[0]
        assert refused.status_code == 400 and "leave the parameter out" in refused.json()[name], refused.content
    found = platform.get("/api/videos/?external_id=e-2").json()
    assert [v["external_id"] for v in found["results"]] == ["e-2"]
    assert platform.get("/api/videos/").json()["count"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_platform_sending_the_bytes_of_a_workbench_upload_is_not_told_its_title_or_uploader(platform, make_user):  # type: ignore[no-untyped-def]
    """Bytes a moderator had uploaded (or an import brought in) were answered with that video's title, description,
    uploader (the moderator's user name) and stored file name: a platform is never told who did what inside,
    and the metadata is the workbench's, not the platform's, as when another platform sent the bytes first."""
    import hashlib

    moderator = make_user("moderator", username="mod-alice")
    video = VideoFactory(
        title="Internal title", description="internal notes", uploader="mod-alice", created_by=moderator
    )
    Video.objects.filter(pk=video.pk).update(sha256=hashlib.sha256(PAYLOAD).hexdigest())

    sent = _submit(platform, title="Platform title", external_id="p-9")
    assert sent.status_code == 201, sent.content
    for body in (sent.json(), platform.get(f"/api/videos/{video.pk}/").json()):
        assert body["id"] == video.pk and body["external_id"] == "p-9"
        assert (body["title"], body["description"], body["uploader"], body["file"]) == ("", "", "", None), body
    assert "mod-alice" not in platform.get("/api/videos/").content.decode()
    # A video the platform's own request made keeps what it sent.
    own = _submit(platform, title="Mine", external_id="p-10", payload=PAYLOAD + b"own").json()
    assert own["title"] == "Mine"
