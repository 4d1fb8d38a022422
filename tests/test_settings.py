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


_RUN_DIRS = (
    "WORKBENCH_REDIS_DIR", "MEDIA_ROOT", "TRAINING_OUTPUT_DIR", "WORKBENCH_TEST_RUN_FOR", "WORKBENCH_TEST_RUN_MEDIA",
    "WORKBENCH_TEST_RUN_TRAINING", "REDIS_URL",
)  # fmt: skip
_RUN_DIRS_PROBE = f"""
import json, os
import workbench.settings_test as settings
assert str(settings.MEDIA_ROOT) == os.environ["MEDIA_ROOT"]
assert str(settings.TRAINING_OUTPUT_DIR) == os.environ["TRAINING_OUTPUT_DIR"]
assert settings.CELERY_BROKER_URL == os.environ.get("REDIS_URL", settings.CELERY_BROKER_URL)
print(json.dumps({{name: os.environ.get(name) for name in {_RUN_DIRS!r}}}))
"""


def test_each_xdist_worker_has_its_own_redis_and_media_and_what_a_test_starts_shares_them(tmp_path: Path) -> None:
    """pytest-xdist's workers inherit their controller's environment, where the test settings had named the
    controller's private Redis, MEDIA_ROOT and TRAINING_OUTPUT_DIR: each worker gets its own (on one Redis, one
    worker's Celery fixture would purge the queues another worker's test waits on; in one training folder a job's
    start removed the other worker's job of the same id). A process that a test starts (a Celery worker) still shares
    its test process's; a MEDIA_ROOT or TRAINING_OUTPUT_DIR given by whoever started the run is kept."""
    base = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_XDIST_WORKER", *_RUN_DIRS}
    }
    base.update(DJANGO_SETTINGS_MODULE="workbench.settings_test", WORKBENCH_VAR_DIR=str(tmp_path / "var"))

    def run_dirs(env: dict[str, str]) -> dict[str, str]:
        out = subprocess.run(
            [sys.executable, "-c", _RUN_DIRS_PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-2000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        return {**env, **{name: value for name, value in seen.items() if value is not None}}

    controller = run_dirs(base)
    gw0 = run_dirs({**controller, "PYTEST_XDIST_WORKER": "gw0"})
    gw1 = run_dirs({**controller, "PYTEST_XDIST_WORKER": "gw1"})
    started_by_gw0 = run_dirs(gw0)  # a worker a test on gw0 starts: its environment, PYTEST_XDIST_WORKER too
    for name in ("WORKBENCH_REDIS_DIR", "MEDIA_ROOT", "TRAINING_OUTPUT_DIR"):
        assert len({controller[name], gw0[name], gw1[name]}) == 3, name
        assert started_by_gw0[name] == gw0[name], name
    assert (controller["WORKBENCH_TEST_RUN_FOR"], gw0["WORKBENCH_TEST_RUN_FOR"]) == ("", "gw0")

    given, given_training = str(tmp_path / "given-media"), str(tmp_path / "given-training")
    controller = run_dirs({**base, "MEDIA_ROOT": given, "TRAINING_OUTPUT_DIR": given_training})
    gw0 = run_dirs({**controller, "PYTEST_XDIST_WORKER": "gw0"})
    assert controller["MEDIA_ROOT"] == gw0["MEDIA_ROOT"] == given
    assert controller["TRAINING_OUTPUT_DIR"] == gw0["TRAINING_OUTPUT_DIR"] == given_training
    assert controller["WORKBENCH_REDIS_DIR"] != gw0["WORKBENCH_REDIS_DIR"]

    # A real Redis (nothing connects here): the run's database for a plain run, the next ones for the workers.
    controller = run_dirs({**base, "REDIS_URL": "redis://cache.internal:6380/2"})
    gw0 = run_dirs({**controller, "PYTEST_XDIST_WORKER": "gw0"})
    gw1 = run_dirs({**controller, "PYTEST_XDIST_WORKER": "gw1"})
    assert controller["REDIS_URL"] == "redis://cache.internal:6380/2"
    assert (gw0["REDIS_URL"], gw1["REDIS_URL"]) == ("redis://cache.internal:6380/3", "redis://cache.internal:6380/4")
    assert run_dirs(gw0)["REDIS_URL"] == gw0["REDIS_URL"]


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
        # A Redis that never answers costs a call 1 s, not redis-py's 5 s (adversarial pass 9).
        "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    }
    assert seen == {"throttle": expected, "shared": expected}


def _without_a_key(environment: dict[str, str], var: Path) -> dict[str, str]:
    """Only ``environment`` (no SECRET_KEY unless given, not the tests' settings) and what any process needs."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env.update(environment, DJANGO_SETTINGS_MODULE="workbench.settings", WORKBENCH_VAR_DIR=str(var))
    return env


def _run_all_without_a_key(*runs: tuple[list[str], dict[str, str], Path]) -> list[subprocess.CompletedProcess[str]]:
    """Each ``(command, environment, var)`` in the checkout with only ``environment`` (``_without_a_key``), all
    started at once; their results in the same order."""
    started = [
        (
            command,
            subprocess.Popen(
                command,
                env=_without_a_key(environment, var),
                cwd=ROOT,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
        )  # fmt: skip
        for command, environment, var in runs
    ]
    results = []
    try:
        for command, process in started:
            stdout, stderr = process.communicate(timeout=180)
            results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def test_no_server_or_worker_runs_on_the_development_secret_key(tmp_path: Path) -> None:
    """The image started web and the workers with the development key everyone can read in settings.py when
    SECRET_KEY was not passed (a Kubernetes Secret not mounted): sessions and reset links forgeable. With DEBUG off,
    gunicorn's application, a Celery worker and beat stop at start with a plain message; tools that only import
    settings (mypy's plugin, manage.py commands) still run, and `manage.py up`'s key file serves the checkout.

    The seven processes are independent (each starts Python and Django: a second or more of CPU), so they run at
    once: web and the worker without a var folder, the rest with an empty one, the last with `up`'s key file."""
    var, absent, keyed = tmp_path / "var", tmp_path / "absent", tmp_path / "keyed"  # `absent` is never made
    var.mkdir()
    keyed.mkdir()
    (keyed / "secret_key").write_text("generated-by-up\n")  # what `manage.py up` wrote: every process of the checkout
    deployed = {"DATABASE_URL": "postgres://u:p@127.0.0.1:1/workbench", "REDIS_URL": "redis://127.0.0.1:1/0"}
    refusal = "SECRET_KEY is not set"
    celery = str(Path(sys.executable).with_name("celery"))
    probe = "import django; django.setup(); from django.conf import settings; import workbench.wsgi; print(settings.SECRET_KEY)"
    web, worker, beat, keyed_by_env, development, tool, keyed_by_file = _run_all_without_a_key(
        ([sys.executable, "-c", "import workbench.wsgi"], deployed, absent),
        ([celery, "-A", "workbench", "worker", "--pool", "solo", "-Q", "default"], deployed, absent),
        ([celery, "-A", "workbench", "beat", "--schedule", str(var / "beat")], deployed, var),
        ([sys.executable, "-c", probe], deployed | {"SECRET_KEY": "k" * 50}, var),
        ([sys.executable, "-c", probe], deployed | {"DEBUG": "1"}, var),  # development
        ([sys.executable, "manage.py", "check"], deployed, var),  # imports settings, serves nothing
        ([sys.executable, "-c", probe], deployed, keyed),
    )
    assert web.returncode != 0 and refusal in web.stderr, web.stderr[-2000:]
    assert worker.returncode != 0 and refusal in worker.stdout + worker.stderr, worker.stderr[-2000:]
    assert beat.returncode != 0 and refusal in beat.stdout + beat.stderr, beat.stderr[-2000:]
    for out, key in ((keyed_by_env, "k" * 50), (development, "dev-insecure-change-me-in-production")):
        assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == key, out.stderr[-2000:]
    assert tool.returncode == 0, tool.stderr[-2000:]
    out = keyed_by_file
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "generated-by-up", out.stderr[-2000:]
