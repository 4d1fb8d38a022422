from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

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


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only the tests that will run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """When a selected test needs Label Studio, start it now in the background and run those tests
    last: its install and first start (over a minute of migrations) overlap the rest of the suite."""
    global _label_studio
    needs = [item for item in items if "label_studio" in getattr(item, "fixturenames", ())]
    if not needs or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in needs] + needs
    from tests.labelstudio_server import LabelStudioServer

    _label_studio = LabelStudioServer().start_in_background()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _label_studio is not None:
        _label_studio.stop()


@pytest.fixture(scope="session")
def label_studio() -> str:
    """The URL of the real Label Studio server started at collection (see above), once it answers."""
    if _label_studio is None:  # not seen at collection (e.g. requested dynamically): start it now
        pytest.fail("Label Studio was not started at collection; request the `label_studio` fixture by argument")
    try:
        return _label_studio.wait_ready()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """pytest-django's test database, with ``synchronous_commit`` off for every connection to it (this
    process's, a test's threads', its Celery workers'): a commit no longer waits for its WAL to reach the
    disk. Only a crash of the server itself could lose the last commits, and that database is dropped at
    the end anyway; what other sessions see, and when, is unchanged. The per-test commits (transactional
    tests, workers, the concurrency drains) add up to seconds. Set on the test database only: the
    benchmarks' database on the same server keeps its durable commits."""
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        cursor.execute("SET synchronous_commit = off")  # this connection was opened before
    yield
    # A live server's request threads keep their connections to the end of the run, and DROP DATABASE
    # waits 5 s for other sessions to leave before it acts: end them first (nothing uses them any more).
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty Django cache: rows are rolled back between tests and their
    ids reused, so a cached value (e.g. a queue's recent counts) must not outlive its test."""
    from django.core.cache import cache

    cache.clear()
    yield


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
