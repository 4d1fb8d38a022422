"""Pass 6: what pass 5 (``test_adversarial_pass_5_findings.py``, /work/shots/hadv15/FINDINGS.md rows 8, 12 and 26)
left open: users' API tokens stored in clear, a made-up ``Authorization`` header taking a large upload, and text log
lines forged with a newline in user text."""

from __future__ import annotations

import io
import logging
from importlib import import_module
from logging.config import DictConfigurator  # type: ignore[attr-defined]

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from moderation.integrations.services import integration_create
from workbench.jsonlog import RequestIdFilter
from workbench.models import ApiToken
from workbench.tokens import api_token_issue, token_hash

pytestmark = pytest.mark.django_db

DECISIONS = "/api/decisions/"


def _status_with(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get(DECISIONS).status_code


def _tables_holding(text: str) -> list[str]:
    """Every table of the database with a row whose text (all its columns) holds ``text``."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quoted} t WHERE t::text LIKE %s)", [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_a_users_api_token_is_stored_only_as_its_hash_and_shown_once(make_user):
    """Users' API tokens were DRF ``Token`` rows, the key in clear (integration tokens were already hashed): anyone
    who read the database or a backup of it could act as every user with a token. Only the key's SHA-256 and its
    first 8 characters are stored now; the key is in the answer that made it, and nowhere after."""
    session = Client()
    user = make_user("moderator")
    session.force_login(user)
    key = session.post("/api/token/").json()["token"]
    assert len(key) == 40
    assert _tables_holding(key) == []  # not in any table: token, audit log, session
    assert not Token.objects.exists()
    stored = ApiToken.objects.get(user=user)
    assert stored.key_hash == token_hash(key) and stored.prefix == key[:8]
    assert _status_with(key) == 200
    # Asked again, the key cannot be given: 409 naming its first characters, the key nowhere in the answer.
    again = session.post("/api/token/")
    assert again.status_code == 409 and key[:8] in again.json()["detail"] and key not in again.content.decode()
    # A wrong key is refused, and so is the stored hash sent as if it were the key.
    wrong = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert _status_with(wrong) == 401
    assert _status_with(stored.key_hash) == 401


def test_tokens_handed_out_before_hashing_keep_working_after_the_migration(make_user):
    """The migration hashes every clear DRF token into the new table, keeping its expiry, and deletes the clear rows:
    a script holding an old key keeps working, and the key is no longer in the database."""
    user = make_user("labeler")
    old = Token.objects.create(user=user)  # as a token was stored before
    other = Token.objects.create(user=make_user("moderator"))
    expires_at = timezone.now() + timezone.timedelta(days=30)
    hash_tokens = import_module("workbench.migrations.0003_api_tokens_hashed").hash_tokens
    assert hash_tokens(Token, ApiToken, lambda token: expires_at) == 2
    assert not Token.objects.exists()
    assert _tables_holding(old.key) == [] and _tables_holding(other.key) == []
    moved = ApiToken.objects.get(user=user)
    assert moved.key_hash == token_hash(old.key) and moved.prefix == old.key[:8] and moved.expires_at == expires_at
    assert _status_with(old.key) == 200 and _status_with(other.key) == 200
    assert _status_with(old.key.upper() if old.key != old.key.upper() else old.key[::-1]) == 401
    # Its expiry still holds.
    ApiToken.objects.filter(user=user).update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert _status_with(old.key) == 401


def test_migration_0003_run_on_clear_tokens_keeps_them_working_with_their_expiry(make_user):
    """0003 undone and done again inside the test's transaction (PostgreSQL's DDL is transactional): clear DRF tokens
    with 0002's expiry rows, as a database held them before, come out hashed, with the same expiry, still accepted."""
    from django.db.migrations.executor import MigrationExecutor

    user = make_user("moderator")
    executor = MigrationExecutor(connection)
    migration = executor.loader.get_migration("workbench", "0003_api_tokens_hashed")
    before = executor.loader.project_state(("workbench", "0002_api_token_expiry"))
    with connection.schema_editor(atomic=True) as editor:  # unapply takes the state before the migration
        migration.unapply(executor.loader.project_state(("workbench", "0002_api_token_expiry")), editor)
    OldToken = before.apps.get_model("authtoken", "Token")  # noqa: N806
    OldExpiry = before.apps.get_model("workbench", "ApiTokenExpiry")  # noqa: N806
    old = OldToken.objects.create(key="0123456789abcdef0123456789abcdef01234567", user_id=user.pk)
    expires_at = timezone.now() + timezone.timedelta(days=12)
    OldExpiry.objects.create(token_id=old.key, expires_at=expires_at)
    with connection.cursor() as cursor:  # the rows' deferred FK checks now, so that 0003 may drop the table
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with connection.schema_editor(atomic=True) as editor:
        state = migration.apply(before, editor)
        # The table 0003 made again, as the later workbench migrations left it (0004: its scope column); a later
        # migration of another model only moves the state (its table was never undone here).
        graph = executor.loader.graph
        for app, name in graph.forwards_plan(graph.leaf_nodes("workbench")[0]):
            if app == "workbench" and name[:4] > "0003":
                later = executor.loader.get_migration(app, name)
                touched = {str(getattr(op, "model_name", getattr(op, "name", ""))).lower() for op in later.operations}
                if "apitoken" in touched:
                    state = later.apply(state, editor)
                else:
                    state = later.mutate_state(state, preserve=False)

    assert _tables_holding(old.key) == []
    moved = ApiToken.objects.get(user=user)
    assert moved.key_hash == token_hash(old.key) and moved.expires_at == expires_at
    assert _status_with(old.key) == 200 and _status_with("0" * 40) == 401


@pytest.mark.parametrize("url", ["/api/videos/", "/tags/vocabulary/import/"])
@pytest.mark.parametrize("authorization", ["Token made-up", "Integration made-up", "Bearer x", "Token"])
def test_a_made_up_authorization_header_does_not_take_a_large_upload(settings, tmp_path, url, authorization):
    """Pass 5 (F1) let a large body through to an upload route when any ``Authorization`` header was sent: the token
    was checked only after the NUL check had read (spooled to disk) the whole file. The token itself is checked now,
    one indexed lookup of its hash, before the body is read: a made-up one is refused unread (401)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.MEDIA_ROOT = tmp_path
    big = SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))
    # A NUL in a field: had the body been read, the NUL check would answer 400 about it.
    refused = Client().post(url, {"file": big, "note": "a\x00b"}, HTTP_AUTHORIZATION=authorization)
    assert refused.status_code == 401, (refused.status_code, refused.content[:300])
    assert "nothing of the file was read" in refused.content.decode()
    assert refused["WWW-Authenticate"] in ("Token", "Integration")


def test_a_valid_token_still_takes_a_large_upload_and_an_expired_one_does_not(settings, tmp_path, make_user):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.MEDIA_ROOT = tmp_path
    key = api_token_issue(user=make_user("moderator")).key
    _integration, integration_token = integration_create(name="platform-pass-6")

    def post(authorization: str) -> tuple[int, str]:
        big = SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))
        response = Client().post("/api/videos/", {"file": big}, HTTP_AUTHORIZATION=authorization)
        return response.status_code, response.content.decode()

    for authorization in (f"Token {key}", f"Integration {integration_token}"):
        status, body = post(authorization)
        assert "nothing of the file was read" not in body and status not in (401, 413), (authorization, status, body)
    ApiToken.objects.update(expires_at=timezone.now() - timezone.timedelta(seconds=1))
    status, body = post(f"Token {key}")
    assert status == 401 and "nothing of the file was read" in body


def _text_formatter(settings) -> logging.Formatter:  # type: ignore[no-untyped-def]
    """The formatter LOG_FORMAT=text configures (from settings.LOGGING, as Django's logging setup builds it)."""
    return DictConfigurator(settings.LOGGING).configure_formatter(dict(settings.LOGGING["formatters"]["text"]))


def test_a_newline_in_user_text_cannot_forge_a_text_log_line(settings):
    """With LOG_FORMAT=text, an uploaded file named ``x.mp4\\n2026-12-05 … ERROR … [id] forged`` wrote a second log
    line that read as the server's own. Every record's message, its args included, has its control characters
    escaped: one record, one line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_text_formatter(settings))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.hardening.pass6")
    logger.addHandler(handler)
    logger.propagate = False
    forged = "2026-12-05 09:00:00,000 ERROR workbench.auth [abc] admin password reset"
    try:
        logger.warning("Upload of %s refused", f"x.mp4\n{forged}")
        logger.warning("Title %r\r%s\x1b[2K\u2028done", "t", "carriage")
        logger.warning(f"message itself\n{forged}")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert all(line.count(" WARNING tests.hardening.pass6 ") == 1 for line in lines)
    assert "x.mp4\\n2026-12-05" in lines[0] and "\\r" in lines[1] and "\\x1b" in lines[1] and "\\u2028" in lines[1]
    assert not any(line.startswith("2026-12-05 09:00:00") for line in lines)
