"""Settings read the environment and start nothing; the embedded services start only when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import json, django
from pathlib import Path
django.setup()
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from workbench.embedded import postgres_address, redis_socket_alive
call_command("check", verbosity=0)  # what tools and a web process do first
try:
    connection.ensure_connection()
    refused = ""
except ImproperlyConfigured as exc:
    refused = str(exc)
pg, redis = Path(settings.EMBEDDED_POSTGRES_DIR), Path(settings.EMBEDDED_REDIS_DIR)
print(json.dumps({
    "pgdata": (pg / "pgdata").exists(), "postgres": postgres_address(pg) is not None,
    "redis": redis_socket_alive(redis / "redis.sock"), "redis_url": settings.CELERY_BROKER_URL,
    "refused": refused,
}))
"""


@pytest.mark.parametrize("module", ["workbench.settings", "workbench.settings_test"])
def test_importing_settings_starts_no_server(module: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "WORKBENCH_REDIS_DIR"}}
    env.update(DJANGO_SETTINGS_MODULE=module, WORKBENCH_VAR_DIR=str(tmp_path / "var"), MEDIA_ROOT=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["pgdata"] is False and seen["postgres"] is False and seen["redis"] is False, seen
    assert seen["redis_url"].startswith("redis+socket://")  # the URL is known without the server
    # Using the database without starting it is a clear instruction, not a hang or a spawned server.
    assert "manage.py embedded start" in seen["refused"] and "DATABASE_URL" in seen["refused"]


def test_the_test_bootstrap_started_the_services_the_embedded_command_reports(capsys) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings

    call_command("embedded", "status")
    out = capsys.readouterr().out
    if settings.EMBEDDED_POSTGRES_DIR is not None:
        assert "PostgreSQL" in out and ": running" in out.split("PostgreSQL", 1)[1].splitlines()[0]
    if settings.EMBEDDED_REDIS_DIR is not None:
        assert "Redis" in out and ": running" in out.split("Redis", 1)[1].splitlines()[0]


def test_label_studio_is_configured_in_settings(settings) -> None:  # type: ignore[no-untyped-def]
    """LABEL_STUDIO_URL / _TOKEN are read with the rest of the environment; the command defaults to them."""
    from annotation.management.commands.labelstudio import Command

    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_TOKEN = "http://ls.example:8080", "tok"
    parser = Command().create_parser("manage.py", "labelstudio")
    opts = parser.parse_args(["export"])
    assert (opts.url, opts.token) == ("http://ls.example:8080", "tok")


_CACHES_PROBE = """
import json
from django.conf import settings
print(json.dumps({alias: settings.CACHES[alias] for alias in ("throttle", "shared")}))
"""


def test_the_throttle_and_shared_caches_are_one_redis_definition(tmp_path: Path) -> None:
    """The rate limits' cache and the queue counts' cache are the same Redis, defined once
    (``REDIS_SHARED_CACHE``): a second copy of its server and key prefix could drift from the first."""
    from django.conf import settings

    assert settings.CACHES["throttle"] is settings.REDIS_SHARED_CACHE
    assert settings.CACHES["shared"] is settings.REDIS_SHARED_CACHE
    assert settings.REDIS_SHARED_CACHE["LOCATION"] == settings.REDIS_CLIENT_URL

    # Both follow REDIS_URL, as before: the same server and prefix in every process.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "WORKBENCH_REDIS_DIR"}}
    env.update(
        DJANGO_SETTINGS_MODULE="workbench.settings",
        WORKBENCH_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL="redis://cache.internal:6380/2",
    )
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + _CACHES_PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    expected = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6380/2",
        "KEY_PREFIX": "wb",
    }
    assert seen == {"throttle": expected, "shared": expected}


def _run_without_a_key(command: list[str], environment: dict[str, str], var: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in the checkout with only ``environment`` (no SECRET_KEY unless given, not the tests' settings)."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env.update(environment, DJANGO_SETTINGS_MODULE="workbench.settings", WORKBENCH_VAR_DIR=str(var))
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_no_server_or_worker_runs_on_the_development_secret_key(tmp_path: Path) -> None:
    """The image started web and the workers with the development key everyone can read in settings.py when
    SECRET_KEY was not passed (a Kubernetes Secret not mounted): sessions and reset links forgeable. With DEBUG off,
    gunicorn's application, a Celery worker and beat stop at start with a plain message; tools that only import
    settings (mypy's plugin, manage.py commands) still run, and `manage.py up`'s key file serves the checkout."""
    var = tmp_path / "var"
    deployed = {"DATABASE_URL": "postgres://u:p@127.0.0.1:1/workbench", "REDIS_URL": "redis://127.0.0.1:1/0"}
    refusal = "SECRET_KEY is not set"
    web = _run_without_a_key([sys.executable, "-c", "import workbench.wsgi"], deployed, var)
    assert web.returncode != 0 and refusal in web.stderr, web.stderr[-2000:]
    celery = str(Path(sys.executable).with_name("celery"))
    worker = _run_without_a_key([celery, "-A", "workbench", "worker", "--pool", "solo", "-Q", "default"], deployed, var)
    assert worker.returncode != 0 and refusal in worker.stdout + worker.stderr, worker.stderr[-2000:]
    var.mkdir()
    beat = _run_without_a_key([celery, "-A", "workbench", "beat", "--schedule", str(var / "beat")], deployed, var)
    assert beat.returncode != 0 and refusal in beat.stdout + beat.stderr, beat.stderr[-2000:]

    probe = "import django; django.setup(); from django.conf import settings; import workbench.wsgi; print(settings.SECRET_KEY)"
    for allowed, key in (
        ({"SECRET_KEY": "k" * 50}, "k" * 50),
        ({"DEBUG": "1"}, "dev-insecure-change-me-in-production"),  # development
    ):
        out = _run_without_a_key([sys.executable, "-c", probe], deployed | allowed, var)
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == key, out.stderr[-2000:]
    tool = _run_without_a_key([sys.executable, "manage.py", "check"], deployed, var)  # imports settings, serves nothing
    assert tool.returncode == 0, tool.stderr[-2000:]
    (var / "secret_key").write_text("generated-by-up\n")  # what `manage.py up` wrote: every process of the checkout
    out = _run_without_a_key([sys.executable, "-c", probe], deployed, var)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "generated-by-up", out.stderr[-2000:]
