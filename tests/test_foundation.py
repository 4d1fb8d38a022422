from __future__ import annotations

import pytest
from django.db import connection

from workbench.queues import TASK_ROUTES, TaskQueue


@pytest.mark.django_db
def test_embedded_postgres_has_pgvector():
    with connection.cursor() as cur:
        cur.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'")
        assert cur.fetchone() == ("vector",)
        cur.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        assert cur.fetchone()[0] == pytest.approx(1.0)


@pytest.mark.django_db
def test_role_groups_exist_with_permissions():
    from django.contrib.auth.models import Group

    perms = {
        g.name: {f"{p.content_type.app_label}.{p.codename}" for p in g.permissions.all()} for g in Group.objects.all()
    }
    assert perms["moderator"] == {"moderation.upload_video", "moderation.review_video"}
    assert perms["labeler"] == {"annotation.correct_cot"}
    assert perms["policy_editor"] == {"moderation.edit_policy"}
    assert "training.manage_training" in perms["admin"]


def test_every_task_is_routed_to_a_named_queue():
    from workbench.celery import app

    app.loader.import_default_modules()
    project_tasks = {name for name in app.tasks if not name.startswith("celery.")}
    assert project_tasks == set(TASK_ROUTES), "every project task must be routed in workbench/queues.py"
    for name, queue in TASK_ROUTES.items():
        assert app.amqp.router.route({}, name)["queue"].name == queue.value
    assert {q.value for q in TaskQueue} >= {"media", "infer", "train", "default"}


def test_web_process_starts_without_heavy_ml_libraries():
    """The web process (settings, every URLconf, views, API, admin) never imports torch & co."""
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'workbench.settings_test');"
        "import django; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import workbench.wsgi;"
        "heavy = {'torch', 'transformers', 'trl', 'peft', 'vllm', 'faster_whisper', 'ctranslate2'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.django_db
def test_openapi_schema_is_generated(client_as):
    response = client_as("moderator").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/api/videos/" in body and "/api/decisions/" in body


@pytest.mark.django_db
def test_api_requires_authentication_and_the_right_role(client, client_as, make_user):
    anonymous = client.get("/api/videos/")  # no credentials: 401 naming the scheme, as a REST client expects
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    assert client_as("policy_editor").get("/api/videos/").status_code == 403
    assert client_as("moderator").get("/api/videos/").status_code == 200

    from rest_framework.test import APIClient

    user = make_user("labeler")
    session = APIClient()
    session.force_login(user)
    token = session.post("/api/token/").json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/decisions/").status_code == 200
    assert api.post("/api/videos/", {"title": "x"}).status_code == 403


@pytest.mark.django_db
def test_login_required_pages_redirect_anonymous_users(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_form_sent_after_the_session_expired_lands_back_on_its_page_after_login(client):
    """The login page's "next" was the form's POST-only address: after signing in the browser GETs it and
    got a blank 405 page. Now it is the page the form was on (same host), else home."""
    from urllib.parse import parse_qs, urlsplit

    from tests.factories import UserFactory

    def next_of(response):  # type: ignore[no-untyped-def]
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        return parse_qs(urlsplit(response["Location"]).query)["next"][0]

    referer = "http://testserver/annotation/corrections/7/?status=submitted"
    sent = client.post("/annotation/corrections/7/review/", {"action": "accept"}, HTTP_REFERER=referer)
    assert next_of(sent) == "/annotation/corrections/7/?status=submitted"
    assert next_of(client.post("/videos/upload/", {}, HTTP_REFERER="https://elsewhere.example/x")) == "/"
    assert next_of(client.get("/review/?q=1")) == "/review/?q=1"  # a page is still itself

    UserFactory(username="back-again", role="moderator")
    landed = client.post("/login/", {"username": "back-again", "password": "pw-test-123", "next": next_of(sent)})
    assert landed["Location"] == "/annotation/corrections/7/?status=submitted"


@pytest.mark.django_db
def test_an_htmx_refresh_after_the_session_ended_says_so_instead_of_swapping_in_the_sign_in_page(client):
    """The queue list's 15-second poll, signed out, followed the redirect and put the whole sign-in page
    (header, focused username box) inside the queue table. Now: 401 and a sentence, which htmx does not
    swap in (workbench.js shows it above the page); a plain page request still goes to sign in."""
    for url in ("/review/", "/policies/1/"):  # permission_required and Django's login_required
        refreshed = client.get(url, HTTP_HX_REQUEST="true")
        assert refreshed.status_code == 401, url
        assert refreshed["Content-Type"].startswith("text/plain")
        assert "You are signed out" in refreshed.content.decode()
        assert client.get(url).status_code == 302
    posted = client.post("/review/4/submit/", {"action": "approve"}, HTTP_HX_REQUEST="true")
    assert posted.status_code in (401, 403)  # signed out (or the CSRF check first): never the sign-in page


@pytest.mark.django_db
def test_navigation_shows_only_what_the_role_may_do(client_as):
    page = client_as("labeler").get("/").content.decode()
    assert "CoT corrections" in page
    assert "Review queues" not in page and "Training" not in page
    page = client_as("admin").get("/").content.decode()
    assert all(x in page for x in ("Review queues", "CoT corrections", "Training", "Policies"))


def test_compose_file_declares_the_production_services():
    from pathlib import Path

    import yaml

    compose = yaml.safe_load(Path("compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "minio", "web", "worker-media", "worker-infer", "worker-train", "beat", "vllm"} <= set(
        services
    )
    assert "pgvector" in services["postgres"]["image"]
    gpu_override = yaml.safe_load(Path("compose.gpu.yaml").read_text())["services"]
    for name in ("worker-infer", "worker-train"):
        gpu = services[name]
        assert "--pool solo" in gpu["command"] and "--concurrency 1" in gpu["command"]
        # On a GPU host compose.gpu.yaml reserves the GPU (compose.yaml alone runs them on the CPU image).
        assert gpu_override[name]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    # Workers share no disk: nothing but the object store's own volume holds media. The infer and train workers
    # mount only the Hugging Face model cache (hub models they load; no media, no dataset, no checkpoint), web
    # reads it (the training form checks a hub id is there).
    cache = "models:/home/workbench/.cache/huggingface"
    expected = {
        "web": [cache + ":ro"],
        "worker-media": [],
        "beat": [],
        "worker-infer": [cache],
        "worker-train": [cache],
    }
    for name in ("web", "worker-media", "worker-infer", "worker-train", "beat"):
        assert services[name].get("volumes", []) == expected[name], name
        assert services[name]["environment"]["MEDIA_STORAGE"] == "s3"
        assert "container_name" not in services[name], "a fixed name stops --scale"


_RUN_OWNER = """
import sys, time
from pathlib import Path
from workbench.embedded import ensure_redis, private_run_dirs
redis_dir, media_dir = private_run_dirs(Path(sys.argv[1]))
ensure_redis(redis_dir)
print(redis_dir, flush=True)
if sys.argv[2] == "hang":
    time.sleep(120)
"""


def _run_owner(parent, mode: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_OWNER, str(parent), mode], stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_private_run_folders_and_redis_go_with_their_owner_even_a_killed_one():
    """Test runs and benchmarks each get a private Redis; it must not outlive them (it used to leak)."""
    import shutil
    import tempfile
    from pathlib import Path

    from workbench.embedded import reap_orphan_run_dirs, redis_socket_alive

    parent = Path(tempfile.mkdtemp(prefix="wbt-"))  # short: unix socket paths are limited to ~107 bytes
    try:
        proc, redis_dir = _run_owner(parent, "exit")
        assert proc.wait(30) == 0
        assert not redis_dir.parent.exists()  # removed at exit, its Redis shut down first

        proc, redis_dir = _run_owner(parent, "hang")
        sock = redis_dir / "redis.sock"
        assert redis_socket_alive(sock)
        proc.kill()
        proc.wait(30)
        assert redis_socket_alive(sock)  # a killed owner cleans nothing up...
        assert reap_orphan_run_dirs(parent) == 1  # ...so the next run does
        assert not redis_socket_alive(sock) and not redis_dir.parent.exists()
        assert reap_orphan_run_dirs(parent) == 0
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.django_db(transaction=True)
def test_a_finished_request_keeps_its_database_connection():
    """Each "next item" would otherwise pay a new PostgreSQL backend (fork, cold catalog caches)."""
    from django.db import close_old_connections

    connection.close()  # a fresh one: a connection older than CONN_MAX_AGE (a slow run) is rightly closed
    connection.ensure_connection()
    raw = connection.connection
    close_old_connections()  # what Django runs when every request ends
    assert connection.connection is raw


def test_the_nul_check_covers_forms_and_query_strings_and_leaves_json_bodies_to_the_api_parser():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from workbench.forms import nul_checked_by_form
    from workbench.middleware import RejectNulMiddleware

    def view(request):  # type: ignore[no-untyped-def]
        return HttpResponse("view ran")

    @nul_checked_by_form
    def form_view(request):  # type: ignore[no-untyped-def]
        return HttpResponse("view ran")

    middleware = RejectNulMiddleware(view)
    factory = RequestFactory()
    assert middleware.process_view(factory.post("/x/", {"note": "a\x00b"}), view, (), {}).status_code == 400
    assert middleware.process_view(factory.get("/x/", {"q": "\x00"}), view, (), {}).status_code == 400
    assert middleware(factory.get("/x\x00/")).status_code == 400
    assert middleware.process_view(factory.post("/x/", {"note": "fine"}), view, (), {}) is None
    # A view whose forms say it on the field (workbench.forms.NulCheckedForm) gets the request.
    assert middleware.process_view(factory.post("/x/", {"note": "a\x00b"}), form_view, (), {}) is None
    as_json = factory.post("/api/x/", '{"a": "b\\u0000"}', content_type="application/json")
    assert middleware.process_view(as_json, view, (), {}) is None
    assert not as_json._read_started  # the body is still there for the view to stream


@pytest.mark.django_db
def test_a_signed_in_browser_calls_the_api_with_its_session_and_csrf_token(make_user):
    """The token class comes first (an anonymous call is a 401): a page's own calls with the session cookie still
    work, and the session's CSRF check still guards its writes."""
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("moderator"))
    assert browser.get("/api/decisions/", HTTP_ACCEPT="application/json").status_code == 200
    refused = browser.post("/api/token/")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    csrf = browser.get("/account/api-token/").cookies.get("csrftoken") or browser.cookies["csrftoken"]
    made = browser.post("/api/token/", HTTP_X_CSRFTOKEN=csrf.value)
    assert made.status_code in (200, 201) and made.json()["token"]
