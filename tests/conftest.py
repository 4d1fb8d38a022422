from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from tests.factories import PolicyVersionFactory, UserFactory

if TYPE_CHECKING:
    from tests.labelstudio_server import LabelStudioServer


def pytest_configure(config: pytest.Config) -> None:
    """The test bootstrap starts the embedded PostgreSQL and Redis the test settings name (importing
    settings starts nothing); workers and subprocesses that tests start find them running."""
    from workbench.embedded import start_configured

    start_configured()


_label_studio: LabelStudioServer | None = None
# pytest-xdist's controller: a folder of this run that it and its workers share (see ``label_studio``).
_shared_dir: Path | None = None
SHARED_DIR_KEY = "workbench_shared_dir"
LABEL_STUDIO_WANTED = "label-studio.wanted"


def _xdist_controller(config: pytest.Config) -> bool:
    """This process hands the tests to pytest-xdist workers (``-n``) and runs none itself."""
    return config.pluginmanager.has_plugin("dsession")


def _xdist_shared_dir(config: pytest.Config) -> Path | None:
    """In a pytest-xdist worker, the folder its controller shares with the workers; None elsewhere."""
    workerinput = getattr(config, "workerinput", None)
    return Path(workerinput[SHARED_DIR_KEY]) if workerinput is not None else None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _shared_dir
    if _xdist_controller(session.config):  # before xdist starts its workers (its sessionstart is trylast)
        _shared_dir = Path(tempfile.mkdtemp(prefix="wbxdist-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller, per worker: where the run's shared folder is."""
    node.workerinput[SHARED_DIR_KEY] = str(_shared_dir)


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only the tests that will run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """When a selected test needs Label Studio, start it now in the background and run those tests
    last: its install and first start (over a minute of migrations) overlap the rest of the suite.

    Under pytest-xdist each worker collects, but the controller starts the one server (a worker may finish its
    share and exit before the server is up, or the test go to the other worker): a worker only says it is needed."""
    global _label_studio
    needs = [item for item in items if "label_studio" in getattr(item, "fixturenames", ())]
    if not needs or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in needs] + needs
    shared = _xdist_shared_dir(config)
    if shared is not None:
        (shared / LABEL_STUDIO_WANTED).touch()
        return
    from tests.labelstudio_server import LabelStudioServer

    _label_studio = LabelStudioServer().start_in_background()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """pytest-xdist's controller, once a worker has collected (and so said whether Label Studio is needed)."""
    global _label_studio
    if _label_studio is None and _shared_dir is not None and (_shared_dir / LABEL_STUDIO_WANTED).exists():
        from tests.labelstudio_server import LabelStudioServer

        _label_studio = LabelStudioServer(state_dir=_shared_dir).start_in_background()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _label_studio is not None:
        _label_studio.stop()
    if _shared_dir is not None:
        shutil.rmtree(_shared_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def label_studio(pytestconfig: pytest.Config) -> str:
    """The URL of the real Label Studio server started at collection (see above), once it answers."""
    shared = _xdist_shared_dir(pytestconfig)
    if shared is not None:  # started by the controller
        from tests.labelstudio_server import wait_ready_elsewhere

        try:
            return wait_ready_elsewhere(shared)
        except RuntimeError as exc:
            pytest.fail(str(exc))
    if _label_studio is None:  # not seen at collection (e.g. requested dynamically): start it now
        pytest.fail("Label Studio was not started at collection; request the `label_studio` fixture by argument")
    try:
        return _label_studio.wait_ready()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def _database_template(request, django_db_modify_db_settings, django_db_blocker):  # type: ignore[no-untyped-def]
    """This process's test database made from the migrated template (tests/database_template.py), or the lock to
    build that template. None under ``--reuse-db`` or ``--no-migrations`` (pytest-django's own ways then)."""
    if request.config.getvalue("reuse_db") or request.config.getvalue("nomigrations"):
        return None
    from tests.database_template import DatabaseTemplate

    template = DatabaseTemplate.for_this_run()
    workerinput = getattr(request.config, "workerinput", None)
    run = workerinput["testrunuid"] if workerinput is not None else uuid.uuid4().hex
    with django_db_blocker.unblock():
        template.prepare(rebuild=request.config.getvalue("create_db"), run=run)
    return template


@pytest.fixture(scope="session")
def django_db_keepdb(request, _database_template):  # type: ignore[no-untyped-def]
    """pytest-django keeps (does not create again, nor drop) the database the template fixture made: Django's
    ``migrate`` finds it migrated. Our ``django_db_setup`` drops it at the end."""
    return True if _database_template is not None else request.config.getvalue("reuse_db")


@pytest.fixture(scope="session")
def django_db_createdb(request, _database_template):  # type: ignore[no-untyped-def]
    """``--create-db`` is the template's to honour (it migrates from scratch and saves a fresh template)."""
    return False if _database_template is not None else request.config.getvalue("create_db")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, _database_template):  # type: ignore[no-untyped-def]
    """pytest-django's test database, with ``synchronous_commit`` off for every connection to it (this
    process's, a test's threads', its Celery workers'): a commit no longer waits for its WAL to reach the
    disk. Only a crash of the server itself could lose the last commits, and that database is dropped at
    the end anyway; what other sessions see, and when, is unchanged. The per-test commits (transactional
    tests, workers, the concurrency drains) add up to seconds. Set on the test database only: the
    benchmarks' database on the same server keeps its durable commits.

    And the flush after each transactional test deletes the rows instead of truncating (``flush_by_delete``)."""
    from django.db import connection

    if _database_template is not None:
        with django_db_blocker.unblock():
            _database_template.save()  # when this process migrated it: the next ones copy it
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        cursor.execute("SET synchronous_commit = off")  # this connection was opened before
        cursor.execute("SHOW is_superuser")
        superuser = cursor.fetchone()[0] == "on"
    with flush_by_delete(type(connection.ops)) if superuser else contextlib.nullcontext():
        yield
    # A live server's request threads keep their connections to the end of the run, and DROP DATABASE
    # waits 5 s for other sessions to leave before it acts: end them first (nothing uses them any more).
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    if _database_template is not None:  # kept by pytest-django (see ``django_db_keepdb``): dropped here
        with django_db_blocker.unblock():
            _database_template.drop_test_database()


@contextlib.contextmanager
def flush_by_delete(ops_class: Any) -> Iterator[None]:
    """While open, Django's flush (pytest-django's teardown of every transactional test: ``transaction=True``,
    ``live_server``, a real worker, ~210 tests) empties each table with DELETE rather than one TRUNCATE of all of them.
    TRUNCATE gives each of the ~80 tables, its indexes and TOAST table a new file and drops the old ones (~500 files
    per flush, ~1 s on this machine under load), where a test leaves a few rows in a few tables. Same end state: every
    table empty, sequences untouched (a ``reset_sequences`` flush keeps TRUNCATE … RESTART IDENTITY), then Django's
    post_migrate as before. ``session_replication_role = replica`` (the flush's transaction only, superuser only)
    skips foreign-key checks and triggers, as TRUNCATE does, so the tables' order does not matter and no trigger writes
    a row back (the queue counts' triggers)."""
    original = ops_class.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences or not tables:
            return original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        # One statement list, one round trip (psycopg runs several statements when given no parameters).
        deletes = "".join(f"DELETE FROM {self.quote_name(table)};" for table in tables)
        return [f"SET LOCAL session_replication_role = replica;{deletes}"]

    ops_class.sql_flush = sql_flush
    try:
        yield
    finally:
        ops_class.sql_flush = original


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty Django cache: rows are rolled back between tests and their
    ids reused, so a cached value (e.g. a queue's recent counts) must not outlive its test."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _workbench_celery_app_stays_current() -> Iterator[None]:
    """Shared tasks send through Celery's *current* app. A test that builds its own ``Celery(...)`` without
    ``set_as_current=False`` makes it current for the rest of its process, and a later test's ``.delay()``
    then goes to that app's default broker (amqp on localhost): fail the test that did it, and put ours back."""
    from celery import current_app

    from workbench.celery import app

    yield
    if current_app._get_current_object() is not app:
        left = current_app.main
        app.set_current()
        pytest.fail(f"this test left the Celery app {left!r} current: build it with set_as_current=False")


@pytest.fixture
def policy_version(db):  # type: ignore[no-untyped-def]
    return PolicyVersionFactory()


@pytest.fixture
def make_user(db):  # type: ignore[no-untyped-def]
    def _make(role: str | None = None, **kwargs):  # type: ignore[no-untyped-def]
        return UserFactory(role=role, **kwargs)

    return _make


@pytest.fixture
def client_as(make_user):  # type: ignore[no-untyped-def]
    """A logged-in test client for a new user of the given role."""

    def _client(role: str | None) -> Client:
        client = Client()
        client.force_login(make_user(role))
        return client

    return _client


@pytest.fixture
def celery_worker(transactional_db) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A real Celery worker (in a thread) consuming every queue from the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from workbench.celery import app
    from workbench.queues import TaskQueue

    # Earlier tests leave tasks queued that no worker consumed (their transactions committed); this
    # test's worker must not spend its time on them first.
    with app.connection_for_write() as conn:
        for queue in TaskQueue:
            conn.default_channel.queue_purge(queue.value)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=[q.value for q in TaskQueue],
        perform_ping_check=False,
        shutdown_timeout=60,
    ) as worker:
        yield worker


@pytest.fixture(scope="session")
def s3_server() -> Iterator[object]:
    """One real S3-compatible server (s3rver on loopback) for the whole run."""
    from tests.s3server import start_s3_server

    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_media(s3_server, settings, tmp_path):  # type: ignore[no-untyped-def]
    """Media storage switched to a fresh private bucket on the S3 server; MEDIA_ROOT is only scratch."""
    import uuid

    from tests.s3server import ACCESS_KEY, SECRET_KEY

    bucket = s3_server.create_bucket(f"media-{uuid.uuid4().hex[:12]}")
    settings.MEDIA_STORAGE = "s3"
    settings.MEDIA_S3_BUCKET = bucket
    settings.MEDIA_S3_ENDPOINT_URL = s3_server.endpoint
    settings.MEDIA_ROOT = tmp_path / "scratch-media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "workbench.storage.MediaS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server.endpoint,
                "region_name": "us-east-1",
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "addressing_style": "path",
                "default_acl": None,
                "file_overwrite": True,
            },
        },
    }
    return s3_server


@pytest.fixture(scope="session")
def tiny_qwen_vl(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A tiny random Qwen2.5-VL with its processor (tests/tiny_models.py), built once per session."""
    from tests.tiny_models import build_tiny_qwen2_5_vl

    return str(build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-qwen2_5_vl")))


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """A tiny random LLaVA-class VLM with its processor (tests/tiny_models.py), built once per session: one folder,
    so a backend loaded from it by one test (``TransformersBackend.cached``) serves the next."""
    from tests.tiny_models import build_tiny_llava

    return str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))
