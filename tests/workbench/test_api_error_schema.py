"""The OpenAPI schema declares the errors the API really answers (400, 401, 403, 404, 413, 415, 429), each with
it really sends: a client generated from the schema knew only the success bodies.

Each error is fetched for real and validated against the response the schema declares for that operation and
status (workbench/api_schema.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from moderation.integrations.services import integration_create
from workbench.models import ApiToken
from workbench.tokens import token_hash

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client_as) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client_as("moderator").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operation(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    paths = schema["paths"]
    return paths[path][method.lower()]  # type: ignore[no-any-return]


def _check(schema: dict[str, Any], path: str, method: str, response: Any, status: int) -> dict[str, Any]:
    """``response`` has ``status``, and its JSON body is what the schema declares for it there."""
    assert response.status_code == status, (path, response.status_code, response.content[:300])
    declared = _operation(schema, path, method)["responses"].get(str(status))
    assert declared is not None, f"{method} {path} does not declare {status}"
    body_schema = declared["content"]["application/json"]["schema"]
    body = response.json()
    # The component's $ref resolves against the whole schema document.
    jsonschema.validate(body, {**body_schema, "components": schema["components"]})
    return body  # type: ignore[no-any-return]


def test_the_schema_is_valid_and_every_error_it_declares_has_a_body(schema):
    validate_schema(schema)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code, response in responses.items():
                if code.startswith("4"):
                    assert "application/json" in response.get("content", {}), f"{method} {path} {code}: no body"
                    assert response["description"], f"{method} {path} {code}: no description"
            # Every operation takes credentials and checks a permission: a refusal is a 401 or a 403 (only what
            # can really be answered is declared: a platform's token alone is never a 403).
            assert {"401", "403"} & set(responses), f"{method} {path}: {sorted(responses)}"
            # A method the path does not take is no operation: its 405 is declared nowhere (see below).
            assert "405" not in responses, f"{method} {path}"
            if "{" in path:
                assert "404" in responses, f"{method} {path}: {sorted(responses)}"
    components = schema["components"]["schemas"]
    assert components["Error"]["required"] == ["detail"]
    assert "additionalProperties" in components["ValidationError"]
    videos = schema["paths"]["/api/videos/"]
    assert "429" in videos["get"]["responses"] and "Retry-After" in videos["get"]["responses"]["429"]["headers"]
    # A view's own description of what it refuses is kept; the body comes from the one place.
    submit_400 = videos["post"]["responses"]["400"]
    assert "MEDIA_IMPORT_ROOTS" in submit_400["description"]
    assert submit_400["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationError"}
    # Only what can happen: a read without query parameters validates nothing (no 400); every endpoint counts a
    # user's requests (USER_API_RATE_LIMIT: a 429, tests/workbench/test_user_rate_limits.py).
    assert "400" not in schema["paths"]["/api/videos/{id}/"]["get"]["responses"]
    assert "USER_API_RATE_LIMIT" in schema["paths"]["/api/token/"]["post"]["responses"]["429"]["description"]


def test_real_400s_match_the_declared_validation_error(schema, client_as, make_user):
    moderator = client_as("moderator")
    body = _check(schema, "/api/decisions/", "GET", moderator.get("/api/decisions/", {"since": "yesterday"}), 400)
    assert "ISO 8601" in body["since"]
    body = _check(schema, "/api/labels/", "GET", moderator.get("/api/labels/", {"page_size": "0"}), 400)
    assert "page size" in body["page_size"]
    body = _check(schema, "/api/videos/", "GET", moderator.get("/api/videos/", {"external_id": " "}), 400)
    assert "Empty" in body["external_id"]

    uploader = APIClient()
    uploader.force_login(make_user("admin"))
    body = _check(schema, "/api/videos/", "POST", uploader.post("/api/videos/", {"title": "no file"}), 400)
    assert body["file"] == ["Send exactly one video: a multipart 'file' or a server 'path'."]
    malformed = uploader.post("/api/token/", "{not json", content_type="application/json")
    assert "JSON parse error" in _check(schema, "/api/token/", "POST", malformed, 400)["detail"]

    _integration, token = integration_create(name="schema-400")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    refused = platform.post("/api/feedback/events/", {"events": "not a list"}, format="json")
    assert _check(schema, "/api/feedback/events/", "POST", refused, 400)["detail"]
    # A multipart body Django cannot read (a part's headers over its limit) was its bare HTML "Bad Request
    # (400)" page, read before the view by the NUL check; the schema fuzzing found it once 400 was declared.
    boundary = "hapi6boundary"
    unreadable = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{"x" * 2000}"\r\n\r\nv\r\n--{boundary}--\r\n'
    ).encode()
    broken = platform.post(
        "/api/feedback/events/", unreadable, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert broken["Content-Type"] == "application/json"
    assert "The form could not be read" in _check(schema, "/api/feedback/events/", "POST", broken, 400)["detail"]


def test_real_401s_and_403s_match_the_declared_error(schema, client_as, make_user):
    bogus = APIClient()
    bogus.credentials(HTTP_AUTHORIZATION="Integration not-a-token")
    body = _check(schema, "/api/videos/", "GET", bogus.get("/api/videos/"), 401)
    assert body["code"] == "invalid_token"

    user = Client()
    user.force_login(make_user("labeler"))
    key = user.post("/api/token/").json()["token"]
    ApiToken.objects.filter(key_hash=token_hash(key)).update(expires_at=timezone.now() - timedelta(hours=1))
    expired = APIClient()
    expired.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = expired.get("/api/decisions/")
    assert _check(schema, "/api/decisions/", "GET", response, 401)["code"] == "token_expired"
    assert response["WWW-Authenticate"].startswith("Token")

    nobody = APIClient().post("/api/feedback/events/", [], format="json")  # takes only an integration token
    assert _check(schema, "/api/feedback/events/", "POST", nobody, 401)["detail"]

    _check(schema, "/api/videos/", "GET", client_as("policy_editor").get("/api/videos/"), 403)
    # No credentials at all: 401 naming the scheme to use, as a REST client expects (it was a 403 behind the session).
    anonymous = APIClient().get("/api/decisions/")
    assert (
        _check(schema, "/api/decisions/", "GET", anonymous, 401)["detail"]
        == "Authentication credentials were not provided."
    )
    assert anonymous["WWW-Authenticate"] == "Token"
    labeler = APIClient()
    labeler.force_login(make_user("labeler"))
    _check(schema, "/api/videos/", "POST", labeler.post("/api/videos/", {"title": "x"}), 403)


def test_real_404s_match_the_declared_error(schema, client_as):
    moderator = client_as("moderator")
    for path, url in (
        ("/api/videos/{id}/", "/api/videos/999999/"),
        ("/api/videos/{id}/verdict/", "/api/videos/999999/verdict/"),
        ("/api/decisions/{id}/", "/api/decisions/999999/"),
    ):
        assert _check(schema, path, "GET", moderator.get(url), 404)["detail"]
    assert (
        "Invalid page"
        in _check(schema, "/api/videos/", "GET", moderator.get("/api/videos/", {"page": 99}), 404)["detail"]
    )
    bad_cursor = moderator.get("/api/decisions/", {"cursor": "nonsense"})
    assert "Invalid cursor" in _check(schema, "/api/decisions/", "GET", bad_cursor, 404)["detail"]


def test_a_real_429_matches_the_declared_error_and_header(schema):
    _integration, token = integration_create(name="schema-429", rate_limit="1/min")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    assert platform.get("/api/labels/").status_code == 200
    throttled = platform.get("/api/labels/")
    assert "throttled" in _check(schema, "/api/labels/", "GET", throttled, 429)["detail"]
    declared = _operation(schema, "/api/labels/", "GET")["responses"]["429"]["headers"]["Retry-After"]
    jsonschema.validate(int(throttled["Retry-After"]), declared["schema"])


def test_each_error_example_in_the_schema_is_a_body_of_its_schema(schema):
    """The docs show an example beside each error: it must be a body the declared schema accepts, and not one
    status's example under another's (a 404 showed "You do not have permission…")."""
    seen = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            for code, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if code.startswith("4") and "example" in media:
                    jsonschema.validate(media["example"], {**media["schema"], "components": schema["components"]})
                    seen.add((code, json.dumps(media["example"], sort_keys=True)))
    examples = dict(seen)
    assert len(examples) == len(seen)  # one example per status
    assert "throttled" in examples["429"] and "invalid_token" in examples["401"] and "permission" in examples["403"]


def _platform() -> APIClient:
    _integration, token = integration_create(name="schema-413")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    return platform


def test_video_submit_declares_413_with_the_limits_in_force(schema, settings):
    """A video too large (or a form whose fields are) is refused with 413, which the schema did not mention: a
    client generated from it treated the refusal as an undocumented failure."""
    submit = schema["paths"]["/api/videos/"]["post"]["responses"]["413"]
    upload_mb = settings.WORKBENCH_UPLOAD_MAX_BYTES // (1024 * 1024)
    assert f"a video of up to {upload_mb} MB" in submit["description"]
    assert submit["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    # Only what takes a body: a read is never refused for its size.
    assert "413" not in schema["paths"]["/api/videos/"]["get"]["responses"]
    assert "413" not in schema["paths"]["/api/videos/{id}/"]["get"]["responses"]
    events = schema["paths"]["/api/feedback/events/"]["post"]["responses"]["413"]
    assert "video" not in events["description"] and "10 MB" in events["description"]


def test_real_413s_of_the_api_are_json_and_match_the_declared_error(schema, settings):
    """The middleware answers an /api/ form whose fields are over DATA_UPLOAD_MAX_MEMORY_SIZE with the API's JSON
    413 (it was Django's HTML "Bad Request (400)" page, no reason), and a body declared over the limits with
    413 before reading it; both are the declared ``Error``."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from moderation.media.models import Video

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    platform = _platform()
    clip = b"\x00\x00\x00\x18ftypmp42" + b"a" * 2048

    def form(**extra: Any) -> dict[str, Any]:
        return {"file": SimpleUploadedFile("clip.mp4", clip), "title": "t", **extra}

    fields = platform.post("/api/videos/", form(description="x" * (1024 * 1024 + 1)), format="multipart")
    body = _check(schema, "/api/videos/", "POST", fields, 413)
    assert fields["Content-Type"] == "application/json"
    assert body["detail"] == (
        "The request's fields are larger than 1 MB; send fewer per request "
        "(a JSON body counts whole; a video's multipart file does not count)."
    )
    declared = 50 * 1024**3
    sized = platform.post("/api/videos/", form(), format="multipart", CONTENT_LENGTH=str(declared))
    assert _check(schema, "/api/videos/", "POST", sized, 413)["detail"].startswith(
        f"This request is {declared:,} bytes"
    )
    assert not Video.objects.exists()
    # A page's form keeps Django's own refusal page (the API's JSON is for /api/ only).
    page = Client().post(reverse("moderation:tag_set_save"), {"name": "x" * (1024 * 1024 + 1)}, HTTP_ACCEPT="text/html")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
    assert platform.post("/api/videos/", form(external_id="fits"), format="multipart").status_code == 201


def test_feedback_events_declares_no_403_and_every_refusal_there_is_a_real_401(schema, make_user):
    """/api/feedback/events/ declared a 403 it never answers: it takes only a platform's token, so whatever is
    not one (none, a wrong one, a switched-off one, a user's session or Token) is a 401, and a token it
    accepts is never refused by its permission. A client generated from the schema handled a status that
    cannot happen."""
    from moderation.integrations.services import integration_switch

    path = "/api/feedback/events/"
    assert "403" not in _operation(schema, path, "POST")["responses"]

    signed_in = APIClient()
    signed_in.force_login(make_user("admin"))
    user_token = Client()
    user_token.force_login(make_user("admin"))
    key = user_token.post("/api/token/").json()["token"]
    with_user_token = APIClient()
    with_user_token.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Integration not-a-token")
    integration, token = integration_create(name="schema-no-403")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    assert platform.post(path, [], format="json").status_code == 200  # the token it accepts passes

    integration_switch(integration=integration, active=False, by=None)
    for caller in (APIClient(), signed_in, with_user_token, wrong, platform):
        refused = caller.post(path, [], format="json")
        assert _check(schema, path, "POST", refused, 401)["detail"]
        assert refused["WWW-Authenticate"].startswith("Integration")
    # Where the session's permission can refuse, 403 stays declared (and is answered).
    assert "403" in _operation(schema, "/api/videos/", "POST")["responses"]
    assert "403" in _operation(schema, "/api/token/", "POST")["responses"]


def _caller_for(path: str, make_user: Any) -> APIClient:
    """A caller whom ``path``'s authentication and permissions let through: a platform's token on the feedback
    endpoint (it takes nothing else), an admin's session anywhere else."""
    caller = APIClient()
    if path == "/api/feedback/events/":
        _integration, token = integration_create(name=f"schema-caller-{path}")
        caller.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    else:
        caller.force_login(make_user("admin"))
    return caller


def test_every_operation_that_takes_a_body_declares_415_and_really_answers_it(schema, make_user):
    """DRF answers a body whose Content-Type no parser reads with 415 and an ``Error`` body; the schema did not
    say so, and a client that sent text/plain took it for an undocumented failure."""
    taking_a_body = [
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert {("/api/videos/", "post"), ("/api/token/", "post"), ("/api/feedback/events/", "post")} <= set(taking_a_body)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert ("415" in operation["responses"]) == ((path, method) in taking_a_body), f"{method} {path}"
    for path, method in taking_a_body:
        declared = _operation(schema, path, method)["responses"]["415"]
        assert "application/json" in declared["description"] and "text/plain" not in declared["description"]
        caller = _caller_for(path, make_user)
        refused = getattr(caller, method)(path.replace("{id}", "1"), "hello", content_type="text/plain")
        body = _check(schema, path, method.upper(), refused, 415)
        assert body["detail"] == 'Unsupported media type "text/plain" in request.'


def test_a_method_a_path_does_not_take_is_a_405_with_the_error_body(schema, make_user):
    """405 is declared on no operation: OpenAPI lists operations (a path and one of its methods), and a method the
    path does not take is no operation to declare it on, while a declared operation's own method is never a 405.
    What a client gets for one is still the API's ``Error`` body (with ``Allow``), checked here by sending every
    method a path does not list, as a caller its authentication and permissions let through."""
    error = {"$ref": "#/components/schemas/Error", "components": schema["components"]}
    sent = 0
    for path, operations in schema["paths"].items():
        caller = _caller_for(path, make_user)
        url = path.replace("{id}", "1")
        for method in ("get", "post", "put", "patch", "delete"):
            if method in operations:
                continue
            # JSON asked for, as the schema declares every error body (/api/schema/ negotiates: YAML by default).
            accept = {"HTTP_ACCEPT": "application/json"}
            if method == "get":
                response = caller.get(url, **accept)
            else:
                response = getattr(caller, method)(url, {}, format="json", **accept)
            assert response.status_code == 405, (method, path, response.status_code, response.content[:300])
            assert response["Content-Type"] == "application/json"
            jsonschema.validate(response.json(), error)
            assert response.json()["detail"] == f'Method "{method.upper()}" not allowed.'
            assert {m.upper() for m in operations} <= set(response["Allow"].replace(" ", "").split(","))
            sent += 1
    assert sent >= 30


def test_every_error_of_the_schema_endpoint_is_the_json_error_body_whatever_the_accept_header(schema, client_as):
    """/api/schema/ negotiates YAML by default: its refusals came back as YAML labelled
    ``application/vnd.oai.openapi`` (``detail`` a mapping of ``string`` and ``code``), not the JSON ``Error``
    body the schema declares for every error. A successful schema keeps its YAML or JSON as asked."""
    error = {"$ref": "#/components/schemas/Error", "components": schema["components"]}
    _integration, token = integration_create(name="schema-errors")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    wrong_token = APIClient()
    wrong_token.credentials(HTTP_AUTHORIZATION="Integration not-a-token")
    for accept in (None, "application/yaml", "application/vnd.oai.openapi", "application/json", "text/csv"):
        sent = {"HTTP_ACCEPT": accept} if accept else {}
        refusals = [
            (APIClient().get("/api/schema/", **sent), 401, "Authentication credentials were not provided."),
            (wrong_token.get("/api/schema/", **sent), 401, "Invalid integration token."),
            (platform.post("/api/schema/", **sent), 405, 'Method "POST" not allowed.'),
            (platform.get("/api/schema/?format=xml", **sent), 404, "Not found."),
        ]
        if accept == "text/csv":  # no renderer of the schema's writes it: refused before the credential is read
            not_acceptable = "Could not satisfy the request Accept header."
            refusals = [(r, 406, not_acceptable) if s != 404 else (r, s, d) for r, s, d in refusals]
        for response, status, detail in refusals:
            assert response.status_code == status, (accept, response.status_code, response.content[:200])
            assert response["Content-Type"] == "application/json", (accept, status, response["Content-Type"])
            body = json.loads(response.content)
            jsonschema.validate(body, error)
            assert body["detail"] == detail, (accept, status, body)
            if status == 401 and detail == "Authentication credentials were not provided.":
                assert response["WWW-Authenticate"] == "Token"
            elif status == 401:
                assert body["code"] == "invalid_token" and response["WWW-Authenticate"].startswith("Integration")
            if status == 405:
                assert "GET" in response["Allow"]
    served = {
        None: "application/vnd.oai.openapi",
        "application/yaml": "application/yaml",
        "application/json": "application/json",
    }
    for accept, media_type in served.items():
        response = platform.get("/api/schema/", **({"HTTP_ACCEPT": accept} if accept else {}))
        assert response.status_code == 200 and response["Content-Type"].split(";")[0] == media_type, accept
        if media_type == "application/json":
            assert json.loads(response.content)["openapi"].startswith("3.")
        else:
            assert response.content.startswith(b"openapi: 3."), accept
    # A person's page keeps its HTML refusal: the browsable API and the docs' "Sign in first" page.
    # Signed out, both are a 401 as the JSON is (no credentials were sent); the docs' page says "Sign in first".
    for url in ("/api/decisions/", "/api/docs/"):
        page = Client().get(url, HTTP_ACCEPT="text/html")
        assert page.status_code == 401 and page["Content-Type"].startswith("text/html"), url
    assert "Sign in first" in page.content.decode()
