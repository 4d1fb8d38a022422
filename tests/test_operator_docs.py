"""What an operator deploying the workbench reads — README.md and compose.yaml — agrees with the code.

The README's tables (settings read from the environment and their defaults, management commands, their options
and subcommands, beat's periodic tasks and their queues, the workers' queues, the roles, the API's operations, the
/metrics series) and compose.yaml are checked against what the code reads, defines and routes, and so is every
`manage.py …` / `./run.sh …` invocation, site route, repository file, code name (function, class, task, audit event,
check) and section link the README names anywhere, so neither can
drift from the code unnoticed again. The checks are generic: a new command, variable, beat entry, API operation or
metric fails them until the README names it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from workbench.queues import TASK_ROUTES, TaskQueue

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
APPS = ("workbench", "moderation", "training", "annotation")

# Read from the environment but not for operators: the test bootstrap sets them for its own processes.
TEST_ONLY_VARIABLES = {
    "WORKBENCH_TESTING": "settings_test.py sets it",
    "WORKBENCH_TEST_DB": "the throwaway test database's name",
    "WORKBENCH_REDIS_DIR": "each test run's private embedded Redis",
}
# Read from the environment by code that is not ours to configure (torch.distributed's rank, Django's own).
NOT_SETTINGS = {"RANK", "DJANGO_SETTINGS_MODULE"}

# ``env.str("NAME")`` and settings' own readers that take the variable's name first (``_request_rate("NAME", …)``).
_ENV_READ = re.compile(r"""\b(?:env(?:\.\w+)?|_request_rate|_count_at_least_one)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
_OS_ENVIRON_READ = re.compile(r"""os\.(?:environ\.get\(|environ\[|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")


def _section(title: str) -> str:
    """The README's text from the heading ``## {title}…`` to the next ``## `` heading."""
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def environment_variables_read() -> set[str]:
    """Every variable our code reads from the environment: settings' ``env…("NAME")`` calls, and the
    ``os.environ`` reads elsewhere in the apps (the test settings and non-settings names left out)."""
    names = set(_ENV_READ.findall((ROOT / "workbench" / "settings.py").read_text()))
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name != "settings_test.py" and "migrations" not in path.parts:
                names |= set(_OS_ENVIRON_READ.findall(path.read_text()))
    return names - NOT_SETTINGS


def documented_variables() -> set[str]:
    rows = _table_rows(_section("Configuration"), "| variable |")
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])}


def test_every_environment_variable_the_code_reads_is_in_the_readme_configuration_table() -> None:
    read = environment_variables_read()
    assert {
        "DATABASE_PREPARED_STATEMENTS",
        "ROUTING_REPAIR_BATCH",
        "KEPT_VERDICT_RETENTION_DAYS",
    } <= read  # the scan works
    documented = documented_variables()
    missing = sorted(read - documented - set(TEST_ONLY_VARIABLES))
    assert not missing, f"read from the environment but not in README's Configuration table: {missing}"
    stale = sorted(documented - read)
    assert not stale, f"in README's Configuration table but read nowhere: {stale}"


def _project_commands() -> dict[str, Any]:
    from django.core.management import get_commands, load_command_class

    return {
        name: load_command_class(app, name)
        for name, app in get_commands().items()
        if app.split(".")[0] in APPS and not name.startswith("_")
    }


def _options(command: Any, name: str) -> set[str]:
    from django.core.management.base import BaseCommand

    own = command.create_parser("manage.py", name)._option_string_actions
    base = BaseCommand().create_parser("manage.py", "base")._option_string_actions
    return {opt for opt in own if opt.startswith("--") and opt not in base}


def test_every_management_command_and_option_is_in_the_readme_commands_table() -> None:
    rows = _table_rows(_section("Commands"), "| command |")
    commands = _project_commands()
    assert {"repair_routing", "import_kuaimod", "up", "labelstudio", "export_tag_events"} <= set(commands)
    problems = []
    for name, command in sorted(commands.items()):
        # A row names a command as `manage.py NAME …` or, after the first, as `NAME …`.
        row = next((r for r in rows if re.search(rf"`(?:manage\.py )?{name}(?:[ `\\]|$)", r[0])), None)
        if row is None:
            problems.append(f"{name}: no row")
            continue
        undocumented = sorted(opt for opt in _options(command, name) if not re.search(rf"{opt}\b", " ".join(row)))
        if undocumented:
            problems.append(f"{name}: options not in its row {undocumented}")
    for row in rows:  # a flag written in a row is an option of a command that row names
        named = [n for n in commands if re.search(rf"`(?:manage\.py )?{n}(?:[ `\\]|$)", row[0])]
        known = set().union(*(_options(commands[n], n) for n in named)) if named else set()
        for flag in set(re.findall(r"(--[a-z][a-z-]*)", row[0])) - known:
            problems.append(f"row {row[0][:40]!r}: {flag} is no option of {named}")
    assert not problems, "\n".join(problems)


_EVERY = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def _every_seconds(schedule: Any) -> float | str:
    """A beat entry's interval in seconds (a number, a timedelta, celery's ``schedule``); a crontab as its text."""
    from datetime import timedelta

    from celery.schedules import crontab

    if isinstance(schedule, crontab):
        return str(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)
    return run_every.total_seconds() if run_every is not None else float(schedule)


def test_every_beat_task_is_in_the_readme_with_its_interval_and_queue() -> None:
    """Each entry of beat's schedule is a row of the README's beat table with its interval ("15 s", "5 min", "1 h",
    "1 d"; a crontab as celery writes it) and the queue it runs on, and each row is an entry."""
    from workbench.celery import app

    rows = _table_rows(_section("Past one machine"), "| beat task |")
    documented: dict[str, tuple[float | str, str]] = {}
    for task, every, queue, _what in rows:
        written = re.fullmatch(r"(\d+(?:\.\d+)?) (s|min|h|d)", every)
        documented[task.strip("`")] = (float(written[1]) * _EVERY[written[2]] if written else every.strip("`"), queue)
    unrouted = sorted(e["task"] for e in app.conf.beat_schedule.values() if e["task"] not in TASK_ROUTES)
    assert not unrouted, f"beat sends tasks TASK_ROUTES does not route: {unrouted}"
    scheduled = {
        entry["task"]: (_every_seconds(entry["schedule"]), TASK_ROUTES[entry["task"]].value)
        for entry in app.conf.beat_schedule.values()
    }
    assert "moderation.inference.tasks.purge_kept_verdicts" in scheduled
    missing = {task: when for task, when in scheduled.items() if documented.get(task) != when}
    assert not missing, f"beat entries the README's table lacks or gives another interval/queue: {missing}"
    stale = sorted(set(documented) - set(scheduled))
    assert not stale, f"in the README's beat table, not in beat's schedule: {stale}"


def _queues_of(command: str) -> set[str]:
    args = shlex.split(command)
    if "worker" not in args:
        return set()
    at = args.index("-Q") if "-Q" in args else args.index("--queues")
    return set(args[at + 1].split(","))


def test_the_readme_names_a_worker_for_every_queue() -> None:
    rows = _table_rows(_section("Past one machine"), "| worker |")
    consumed = set().union(*(_queues_of(row[1].strip("`")) for row in rows))
    assert consumed == {q.value for q in TaskQueue}
    assert any("celery -A workbench beat" in row[1] for row in rows)


# --- compose.yaml ------------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else shlex.join(command)


def _app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running our image (web, workers, beat)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if str(svc.get("image", "")).startswith("review-workbench")
    }


def test_compose_runs_a_worker_for_every_queue_and_one_beat() -> None:
    services = _app_services(_compose())
    always = {name: svc for name, svc in services.items() if not svc.get("profiles")}
    consumed = set().union(*(_queues_of(_command(svc)) for svc in always.values()))
    assert consumed == {q.value for q in TaskQueue}, "a queue no service of the default profile consumes"
    beats = [name for name, svc in services.items() if " beat" in _command(svc)]
    assert beats == ["beat"]
    # The GPU media worker runs "instead of, or beside" worker-media: it serves every queue that one does.
    assert _queues_of(_command(services["worker-media"])) <= _queues_of(_command(services["worker-media-gpu"]))
    # /readyz's default asks for a worker of the default queue.
    from django.conf import settings

    assert set(settings.READYZ_REQUIRED_QUEUES) <= consumed


def test_compose_beat_can_write_its_schedule() -> None:
    """Beat's schedule file's folder must exist: shelve creates the file, not its folder (FileNotFoundError)."""
    command = _command(_app_services(_compose())["beat"])
    schedule = re.search(r"--schedule[ =](\S+)", command)
    assert schedule, command
    folder = str(Path(schedule.group(1)).parent)
    dockerfile = (ROOT / "Dockerfile").read_text()
    made = re.search(rf"mkdir -p \S*\s*{re.escape(folder)}\b", command) or re.search(
        rf"mkdir -p .*{re.escape(folder)}\b", dockerfile
    )
    assert made, f"nothing creates {folder} before beat opens {schedule.group(1)}"


def test_compose_services_sharing_an_image_build_it_the_same_way() -> None:
    """Two services that tag the same image with different builds overwrite each other's (worker-train used
    to inherit the CPU build under the GPU image's name)."""
    builds: dict[str, tuple[str, Any]] = {}
    for name, svc in _app_services(_compose()).items():
        image, build = svc["image"], svc.get("build")
        if build is None:
            continue
        if image in builds:
            assert builds[image][1] == build, f"{name} and {builds[image][0]} build {image} differently"
        builds[image] = (name, build)


def test_compose_environment_names_only_variables_the_code_reads_and_every_one_it_needs() -> None:
    read = environment_variables_read()
    for name, svc in _app_services(_compose()).items():
        environment = svc["environment"]
        unknown = sorted(set(environment) - read)
        assert not unknown, f"{name} sets variables no code reads: {unknown}"
        for required in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "MEDIA_ROOT"):
            assert environment.get(required), (name, required)
        assert environment["MEDIA_STORAGE"] == "s3" and environment.get("MEDIA_S3_BUCKET"), name
        assert environment.get("DEBUG") == "false", name
        # No made-up default: a production served with a key everyone can read in this file signs forgeable sessions.
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), name


def test_compose_passes_the_readme_production_environment_to_the_containers() -> None:
    """Compose hands a container only the variables its file names: one the README's production line asks for
    but compose leaves out (WORKBENCH_HTTPS was) is silently not set however the operator sets it."""
    line = README[README.index("Production environment:") :].split("\n\n")[0]
    production = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", line)) | set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line))
    assert {"WORKBENCH_HTTPS", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"} <= production
    for name, svc in _app_services(_compose()).items():
        missing = sorted(production - set(svc["environment"]))
        assert not missing, f"{name} does not pass {missing}"


def test_compose_health_checks() -> None:
    from django.urls import resolve

    services = _compose()["services"]
    for name in ("postgres", "redis", "minio"):
        assert services[name].get("healthcheck"), name
    for name, svc in _app_services(_compose()).items():
        depends = svc["depends_on"]
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
    # Web's probe asks a URL the app routes (liveness: a worker down elsewhere does not make web unhealthy).
    web = " ".join(services["web"]["healthcheck"]["test"])
    [url] = re.findall(r"https?://[^'\"\s]+", web)
    path = "/" + url.split("/", 3)[3]
    assert resolve(path).url_name == "healthz", path
    # Every worker's probe is the heartbeat module; the module exists and has its entry point.
    import importlib

    for name, svc in _app_services(_compose()).items():
        if _queues_of(_command(svc)):
            test = svc["healthcheck"]["test"]
            assert test[:3] == ["CMD", "python", "-m"], (name, test)
            assert callable(importlib.import_module(test[3]).main), (name, test)


def _seconds(duration: str) -> float:
    """compose's duration ("45s", "16m", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    assert parts and "".join(a + u for a, u in parts) == duration, duration
    return sum(float(amount) * units[unit] for amount, unit in parts)


def test_compose_migrates_once_before_anything_runs_our_code() -> None:
    """`migrate` in web's command ran in every web replica at once (`--scale web=3`: three migrations racing) and
    workers started on the old schema; one one-shot service migrates, everything else waits for it to succeed."""
    services = _app_services(_compose())
    migrating = [name for name, svc in services.items() if re.search(r"manage\.py migrate\b", _command(svc))]
    assert migrating == ["migrate"], migrating
    assert services["migrate"]["restart"] == "no"
    for name, svc in services.items():
        if name != "migrate":
            assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert "migrate" not in services["migrate"]["depends_on"]


def test_the_image_leaves_out_secrets_and_local_state() -> None:
    """`COPY . .` took the whole checkout: .env with SECRET_KEY and passwords, var/ (embedded database, media,
    models, secret_key), .venv and .git went into every image layer pushed to a registry."""
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".env.*", "var", ".venv", ".git"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = {src.rstrip("/") for src in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.M) if src != "."}
    assert copied and not copied & ignored, copied & ignored  # what the build copies by name is sent


def test_every_variable_compose_reads_is_documented() -> None:
    """An operator sets compose's `${NAME}`s in .env: each is a row of the Configuration table (passed on to the
    app) or of the compose variables table, and each row of the latter is one compose reads."""
    text = (ROOT / "compose.yaml").read_text()
    read = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "VLLM_MODEL"} <= read  # the scan works
    rows = _table_rows(README, "| compose variable |")
    compose_own = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])}
    missing = sorted(read - compose_own - documented_variables())
    assert not missing, f"compose reads {missing}, documented nowhere"
    stale = sorted(compose_own - read)
    assert not stale, f"documented as compose variables but compose reads none of {stale}"


def test_compose_vllm_profile_is_wired_to_the_infer_workers() -> None:
    """The optional vLLM server was started with the model's whole context while the workers cut prompts to
    VLLM_MAX_MODEL_LEN, and no infer worker could be pointed at it without editing compose.yaml."""
    from django.conf import settings

    compose = _compose()
    vllm = compose["services"]["vllm"]
    args = vllm["command"]
    server_len = args[args.index("--max-model-len") + 1]
    worker_env = _app_services(compose)["worker-infer"]["environment"]
    assert server_len == worker_env["VLLM_MAX_MODEL_LEN"] == f"${{VLLM_MAX_MODEL_LEN:-{settings.VLLM_MAX_MODEL_LEN}}}"
    assert worker_env["VLLM_SERVER_URL"] == "${VLLM_SERVER_URL:-}"  # empty: the in-process engine, as settings'
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    # The server takes as many images a prompt as the backends send (the offline engine is given the same limit):
    # the compose service named none, so the server's own default decided.
    import json

    from moderation.inference.backends.vllm_backend import MAX_IMAGES

    assert "--limit-mm-per-prompt" in args, "the vllm service leaves the image limit to the server's default"
    assert json.loads(args[args.index("--limit-mm-per-prompt") + 1]) == {"image": MAX_IMAGES}


def test_compose_postgres_has_room_for_parallel_index_builds() -> None:
    """Docker's 64 MB /dev/shm stops PostgreSQL's parallel workers (and pgvector's parallel HNSW builds)."""
    postgres = _compose()["services"]["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    size = str(postgres.get("shm_size", "64mb")).lower()
    amount, unit = re.fullmatch(r"(\d+)\s*([kmg])b?", size).groups()  # type: ignore[union-attr]
    assert int(amount) * {"k": 1 / 1024, "m": 1, "g": 1024}[unit] >= 512, size


def test_compose_restarts_long_running_services_and_not_one_shots() -> None:
    services = _compose()["services"]
    one_shot = {"migrate", "minio-init"}
    for name, svc in services.items():
        expected = "no" if name in one_shot else "unless-stopped"
        assert svc.get("restart") == expected, (name, svc.get("restart"))


def test_compose_runs_every_django_process_with_the_same_environment() -> None:
    """Web, the workers, beat and migrate read one configuration: a variable set for web but not a worker (or the
    other way) splits the deployment. A service may only add to it (the GPU media worker's device settings)."""
    services = _app_services(_compose())
    base = services["web"]["environment"]
    for name, svc in services.items():
        differing = sorted(k for k in base if svc["environment"].get(k) != base[k])
        assert not differing, f"{name} differs from web in {differing}"
    assert sorted(set(services["worker-media-gpu"]["environment"]) - set(base)) == [
        "OCR_DEVICE",
        "WHISPER_COMPUTE_TYPE",
        "WHISPER_DEVICE",
    ]


def test_compose_stops_each_service_gracefully() -> None:
    """`docker stop` sends SIGTERM to the container's first process and kills it after stop_grace_period (10 s
    unless set). Web's gunicorn ran under `sh -c`, which ignored SIGTERM: every deploy cut requests in flight."""
    from django.conf import settings

    from workbench.queues import INFER_ITEM_TIME_LIMIT_S

    services = _app_services(_compose())
    for name, svc in services.items():
        command = svc["command"]
        if name != "migrate" and isinstance(command, str) and command.startswith("sh -c"):
            assert re.search(r"&& exec \S+", command), f"{name}: the shell, not the process, receives SIGTERM"
    web = services["web"]
    assert web["command"][0] == "gunicorn" and "python:workbench.gunicorn_conf" in web["command"]
    assert _seconds(web["stop_grace_period"]) > settings.WEB_GRACEFUL_TIMEOUT
    assert _seconds(services["worker-infer"]["stop_grace_period"]) > INFER_ITEM_TIME_LIMIT_S
    for name, svc in services.items():
        assert _seconds(svc.get("stop_grace_period", "10s")) > 10 or name in {"migrate", "beat"}, name


def test_compose_file_is_valid_for_the_compose_client_when_one_is_installed() -> None:
    """`docker compose config` (v2 plugin) or `docker-compose config` (v1) parses and validates the whole file,
    every profile included. Only where a client is installed: the YAML tests above stand in elsewhere."""
    import shutil

    clients = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        clients.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        clients.append(["docker-compose"])
    if not clients:
        import pytest

        pytest.skip("no compose client on this machine")
    for client in clients:
        profiles = ["--profile", "gpu-media", "--profile", "vllm"]
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "SECRET_KEY": "x" * 50}
        out = subprocess.run(
            [*client, *profiles, "config", "--services"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert set(out.stdout.split()) == set(_compose()["services"]), out.stdout
        # The GPU override merges: the same services, the infer and train workers on the GPU image with a GPU.
        files = ["-f", "compose.yaml", "-f", "compose.gpu.yaml"]
        gpu = subprocess.run([*client, *files, "config"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert gpu.returncode == 0, gpu.stderr
        merged, expected = yaml.safe_load(gpu.stdout)["services"], _merged_gpu_services()
        services = _compose()["services"]
        always = {name for name, svc in services.items() if not svc.get("profiles")}
        assert always <= set(merged) <= set(services), set(merged)  # v1 lists the profiles' services too, v2 not
        for name in ("worker-infer", "worker-train"):  # the keys the override sets, as the tests' merge has them
            assert merged[name]["build"]["args"] == expected[name]["build"]["args"], name
            assert (
                merged[name]["image"] == expected[name]["image"] and merged[name]["deploy"] == expected[name]["deploy"]
            )
            assert merged[name]["command"] == expected[name]["command"], name
        without_key = subprocess.run(
            [*client, "config", "-q"], cwd=ROOT, env={"PATH": env["PATH"]}, capture_output=True, text=True
        )
        assert without_key.returncode != 0 and "SECRET_KEY" in without_key.stderr


def _settings_static_root(environment: dict[str, str]) -> str:
    probe = "from django.conf import settings; print(settings.STATIC_ROOT)"
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "workbench.settings", **environment}
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_the_image_serves_the_static_files_it_collected_at_build_time() -> None:
    """The Dockerfile collects static files at build time, without compose's WORKBENCH_VAR_DIR; the web service
    must look for them (and their manifest: hashed names, else every page is a 500) in the same folder."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    line = next(line for line in dockerfile.replace("\\\n", " ").splitlines() if "collectstatic" in line)
    build_env = dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", line.split("python manage.py")[0]))
    run_env = {k: str(v) for k, v in _app_services(_compose())["web"]["environment"].items()}
    run_env = {k: v for k, v in run_env.items() if "${" not in v}
    assert "WORKBENCH_VAR_DIR" in run_env
    assert _settings_static_root(build_env) == _settings_static_root(run_env)


def _built_from_source() -> list[str]:
    """Packages of the installed set pip had to compile (no binary wheel for them): the image needs a compiler."""
    found = []
    for entry in map(Path, sys.path):
        for wheel in entry.glob("*.dist-info/WHEEL") if entry.name == "site-packages" else []:
            tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
            if tags and all(t.endswith("linux_x86_64") and "manylinux" not in t for t in tags):
                found.append(wheel.parent.name)
    return found


def test_the_dockerfile_can_build_the_dependency_set_on_each_base_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    if _built_from_source():  # pdqhash: no binary wheel, built with g++ against Python.h
        assert re.search(r"apt-get install[^\n]* (g\+\+|build-essential)[ \\]", dockerfile), _built_from_source()
    bases = {
        svc["build"]["args"].get("BASE_IMAGE", "python")
        for svc in _app_services(_compose()).values()
        if isinstance(svc.get("build"), dict)
    }
    if any(not base.startswith("python") for base in bases):  # a CUDA base has no Python of its own
        assert "python3-venv" in dockerfile and "python3-dev" in dockerfile, bases


def test_the_readme_upgrading_steps_name_real_commands_options_services_and_migrations() -> None:
    """What an operator runs on upgrade day: each `manage.py …` of the section is a command with those options,
    each `docker compose run|exec SERVICE` a service of compose.yaml, each migration named one that exists, and
    the post-deploy table lists the commands earlier releases asked for."""
    from django.core.management import get_commands, load_command_class

    section = _section("Upgrading")
    problems = []
    for name, flags in re.findall(r"manage\.py ([a-z_]+)((?: --[a-z-]+)*)", section):
        app = get_commands().get(name)
        if app is None:
            problems.append(f"manage.py {name}: no such command")
            continue
        command = load_command_class(app, name)
        known = set(command.create_parser("manage.py", name)._option_string_actions)
        problems += [f"manage.py {name}: no option {flag}" for flag in flags.split() if flag not in known]
    services = set(_compose()["services"])
    for service in re.findall(r"docker compose (?:run --rm(?: --no-deps)?(?: --user \w+)?|exec) ([a-z-]+)", section):
        if service not in services:
            problems.append(f"compose has no service {service}")
    for stopped in re.findall(r"docker compose stop ((?:[a-z-]+ ?)+)", section):
        problems += [f"compose has no service {s}" for s in stopped.split() if s not in services]
    for app, migration in re.findall(r"(moderation|annotation|training|workbench) migration `(\d{4}_\w+)`", section):
        if not (ROOT / app / "migrations" / f"{migration}.py").exists():
            problems.append(f"no migration {app}.{migration}")
    assert not problems, "\n".join(problems)
    steps = _table_rows(section, "| after upgrading past |")
    run_once = " ".join(row[1] for row in steps)
    assert "manage.py rescore_pairs --mirrored-only" in run_once  # the mirrored-frame fix's (d92c13e)
    assert "manage.py repair_routing --all" in run_once
    for step in ("migrate", "collectstatic", "check --deploy", "/readyz"):
        assert step in section, step


_COMPOSE_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}")


def _interpolate(value: object, given: dict[str, str]) -> str:
    """compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}` with the operator's variables ``given``."""

    def value_of(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if given.get(name):
            return given[name]
        assert op != "?", f"compose requires {name}: {arg}"
        return arg if op == "-" else ""

    return _COMPOSE_VARIABLE.sub(value_of, str(value))


def _check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    env.update(environment, DJANGO_SETTINGS_MODULE="workbench.settings")  # the image's ENV
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_compose_production_environment_passes_the_deploy_checks(tmp_path: Path) -> None:
    """The web container's environment exactly as compose builds it, with what the README's production line asks
    the operator for: `manage.py check --deploy` has nothing to say. With compose's defaults alone (plain http,
    WORKBENCH_HTTPS off; the variables compose requires given) it says only the four HTTPS warnings that WORKBENCH_HTTPS=1 clears, no other."""
    web = _app_services(_compose())["web"]["environment"]
    operator = {
        "SECRET_KEY": "Zq8#pL2v!Xw9@mN4^bR7&tY1*uI3(oP5)aS6dF8gH0jK2lZ4xC6vB8nM1",
        "ALLOWED_HOSTS": "review.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://review.example.com",
        "WORKBENCH_HTTPS": "1",
        "POSTGRES_PASSWORD": "pw",
        "MINIO_ROOT_PASSWORD": "a-long-random-minio-password",
    }
    # The container's own folders (/scratch) stand in as this run's.
    scratch = {"MEDIA_ROOT": "media", "WORKBENCH_VAR_DIR": "var", "PROMETHEUS_MULTIPROC_DIR": "prometheus"}
    local = {name: str(tmp_path / folder) for name, folder in scratch.items()}
    production = {name: _interpolate(value, operator) for name, value in web.items()} | local
    check = _check_deploy(production)
    assert check.returncode == 0 and "no issues" in check.stdout, check.stdout + check.stderr

    required = {name: operator[name] for name in ("SECRET_KEY", "MINIO_ROOT_PASSWORD")}  # compose refuses without
    defaults = {name: _interpolate(value, required) for name, value in web.items()}
    plain_http = _check_deploy(defaults | local)
    found = set(re.findall(r"\(([a-z_]+\.[WE]\d+)\)", plain_http.stdout + plain_http.stderr))
    assert found == {"security.W004", "security.W008", "security.W012", "security.W016"}, plain_http.stderr


# --- the image's user, and a first `up` on a host without a GPU ------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [
        (line.split(None, 1)[0], line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)", (ROOT / "Dockerfile").read_text(), flags=re.M))


def _chowned_folders() -> set[str]:
    """The folders a RUN of the Dockerfile hands to the app's user (``chown [-R] UID:GID folder…``)."""
    folders: set[str] = set()
    for instruction, args in _dockerfile_instructions():
        if instruction == "RUN":
            for match in re.finditer(r"chown (?:-R )?\S+ ((?:[^&;|]+?))(?:&&|;|\||$)", args):
                folders |= set(match.group(1).split())
    return folders


def test_the_image_runs_as_a_fixed_unprivileged_user_that_owns_what_the_app_writes() -> None:
    """The image ran everything as root: a hole in any dependency (ffmpeg on an uploaded video, a model file) was
    root in the container. It runs as uid/gid 10001, named by number (Kubernetes' runAsNonRoot checks a number),
    and that user owns the folders compose's services write, the image's default var/ and the HF cache."""
    instructions = _dockerfile_instructions()
    args = _dockerfile_args()
    users = [value for instruction, value in instructions if instruction == "USER"]
    assert users, "the image has no USER: it runs as root"
    uid, _, gid = users[-1].replace("${APP_UID}", args["APP_UID"]).replace("${APP_GID}", args["APP_GID"]).partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) >= 1000 and int(gid) >= 1000, users[-1]
    assert (uid, gid) == ("10001", "10001"), "the README's Upgrading chown names 10001:10001"
    useradd = next(value for instruction, value in instructions if instruction == "RUN" and "useradd" in value)
    assert "--uid ${APP_UID}" in useradd and "--gid ${APP_GID}" in useradd and "--system" in useradd
    # Nothing runs after USER as root by accident: the last RUN comes before it, CMD after it.
    last_user = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "USER")
    assert all(instruction != "RUN" for instruction, _ in instructions[last_user:])
    assert any(instruction == "CMD" for instruction, _ in instructions[last_user:])

    chowned = _chowned_folders()
    home = "/home/workbench"
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", (ROOT / "Dockerfile").read_text(), flags=re.M))

    def owned(path: str) -> bool:
        return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in chowned)

    assert owned("/app/var") and "/app" not in chowned, chowned  # the code stays root's, its var/ is the app's
    assert owned(env["HF_HOME"]) and env["HF_HOME"].startswith(home), env.get("HF_HOME")
    for name, svc in _app_services(_compose()).items():
        environment = svc["environment"]
        for variable in ("MEDIA_ROOT", "WORKBENCH_VAR_DIR", "PROMETHEUS_MULTIPROC_DIR"):
            # The folder itself may not exist yet: the app makes it, inside a folder its user owns.
            assert owned(str(Path(environment[variable]).parent)), (name, variable, environment[variable], chowned)
        for mount in svc.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert source in _compose()["volumes"], (name, mount)  # named: it takes the folder's owner when made
            assert owned(target), f"{name} mounts {source} on {target}, which the image's user does not own"


def test_the_processes_need_no_root_to_start() -> None:
    """As uid 10001 nothing may bind a port below 1024: gunicorn binds 8000, compose publishes the container's 8000."""
    from workbench import gunicorn_conf

    port = int(gunicorn_conf.bind.rsplit(":", 1)[1])
    assert port >= 1024, gunicorn_conf.bind
    assert f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text()
    for name, svc in _app_services(_compose()).items():
        for published in svc.get("ports", []):
            assert int(str(published).rsplit(":", 1)[1]) >= 1024, (name, published)
        assert "user" not in svc, f"{name} overrides the image's user"
        assert not re.search(r"--uid|--gid|\bsudo\b|\bchown\b", _command(svc)), name


def test_the_readme_says_how_to_hand_an_existing_volume_to_the_images_user() -> None:
    section = _section("Upgrading")
    assert "10001" in section and "chown -R 10001:10001" in section, "Upgrading: the image's user and the chown"
    assert re.search(r"docker compose run --rm (?:--no-deps )?--user root ", section)
    assert "10001" in _section("Configuration") or "10001" in README[: README.index("\n## Past one machine")]


def _gpu_reserved(svc: dict[str, Any]) -> bool:
    devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in device.get("capabilities", []) for device in devices)


def _merged_gpu_services() -> dict[str, Any]:
    """compose.yaml's services with compose.gpu.yaml merged over them, as compose merges these keys: mappings
    (build, deploy) key by key, the rest replaced. Only what the override sets; compared with the client's own
    merge where a compose client is installed."""
    override = yaml.safe_load((ROOT / "compose.gpu.yaml").read_text())["services"]
    base = _compose()["services"]

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
        return b

    return {name: merge(svc, override.get(name, {})) if name in override else svc for name, svc in base.items()}


def test_compose_default_profile_comes_up_on_a_host_without_a_gpu() -> None:
    """`docker compose up` stopped at worker-infer's and worker-train's NVIDIA reservation on a CPU host (and
    nothing decided the uploaded videos: the infer queue had no consumer). In the default profile no service
    reserves a GPU or builds on a CUDA base, and a worker serves every queue (the previous test); the infer and
    train workers run on the CPU image, where the code falls back to the CPU."""
    for name, svc in _compose()["services"].items():
        if svc.get("profiles"):
            continue
        assert not _gpu_reserved(svc), f"{name} reserves a GPU in the default profile"
        base = (
            (svc.get("build") or {}).get("args", {}).get("BASE_IMAGE", "") if isinstance(svc.get("build"), dict) else ""
        )
        assert "cuda" not in base, (name, base)
    source = (ROOT / "moderation" / "inference" / "backends" / "transformers_backend.py").read_text()
    assert '"cuda" if torch.cuda.is_available() else "cpu"' in source  # the CPU fallback the default relies on
    assert "use_cpu = not torch.cuda.is_available()" in (ROOT / "training" / "runners" / "common.py").read_text()


def test_compose_gpu_override_moves_the_infer_and_train_workers_onto_a_gpu_and_nothing_else() -> None:
    """compose.gpu.yaml replaces the infer and train workers' image and reserves a GPU for each; their queues,
    commands and environment stay compose.yaml's, so the GPU deployment is the same one and a CPU and a GPU
    worker never compete for one queue (a CPU worker taking a 7B VLM's item would load it into RAM)."""
    override = yaml.safe_load((ROOT / "compose.gpu.yaml").read_text())["services"]
    assert set(override) == {"worker-infer", "worker-train"}
    for name, svc in override.items():
        assert set(svc) <= {"build", "image", "deploy"}, (name, set(svc))
    merged = _merged_gpu_services()
    base = _compose()["services"]
    for name in override:
        assert _gpu_reserved(merged[name]), name
        assert (
            "cuda" in merged[name]["build"]["args"]["BASE_IMAGE"]
            and merged[name]["build"]["args"]["REQUIREMENTS"] == "gpu.txt"
        )
        assert merged[name]["command"] == base[name]["command"]
        assert merged[name]["environment"] == base[name]["environment"]
    # Two services tagging one image build it the same way (the GPU image included).
    builds: dict[str, Any] = {}
    for name, svc in merged.items():
        if str(svc.get("image", "")).startswith("review-workbench") and svc.get("build"):
            assert builds.setdefault(svc["image"], svc["build"]) == svc["build"], name
    # The README tells a GPU host how to use it.
    assert "docker compose -f compose.yaml -f compose.gpu.yaml up -d" in README
    assert "COMPOSE_FILE=compose.yaml:compose.gpu.yaml" in README


def test_compose_rotates_every_services_logs() -> None:
    """Docker's default json-file driver never drops a line: the host's disk filled with web's access log."""
    for name, svc in _compose()["services"].items():
        logging = svc.get("logging", {})
        assert logging.get("driver") == "json-file" and logging.get("options", {}).get("max-size"), name
        assert int(logging["options"].get("max-file", 1)) >= 2, name


def _bytes(size: str) -> int:
    amount, unit = re.fullmatch(r"(\d+)\s*([kmg])b?", size.lower()).groups()  # type: ignore[union-attr]
    return int(amount) * {"k": 2**10, "m": 2**20, "g": 2**30}[unit]


def test_compose_caps_the_memory_of_the_services_that_load_no_model() -> None:
    """Web and beat load no model: a runaway request or a leak is stopped at their cap, not by the kernel killing
    PostgreSQL on the same host. The workers' need grows with the models and the reproduction index: the README
    says how to size and set theirs."""
    from django.conf import settings

    services = _app_services(_compose())
    web, beat = _bytes(str(services["web"]["mem_limit"])), _bytes(str(services["beat"]["mem_limit"]))
    assert web >= (settings.WEB_CONCURRENCY + 1) * 300 * 2**20, "at least 300 MB a gunicorn process"
    assert beat >= 256 * 2**20
    assert "mem_limit" in _section("Two commands") or "mem_limit" in README[: README.index("\n## Past one machine")]


# --- every command, flag, route and file the README names, wherever it names it ----------------------------


def _code_spans() -> list[str]:
    """The README's inline code spans (```…``` blocks left out), line breaks inside a span read as spaces."""
    text = re.sub(r"```.*?```", "", README, flags=re.S)
    return [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", text)]


def test_every_manage_py_invocation_in_the_readme_is_a_command_with_those_options() -> None:
    """An operator copies `manage.py NAME --flag` from any paragraph, not only the Commands table: each names a
    command (ours or Django's) and each flag after it is one of that command's options; `./run.sh` passes its
    arguments to `manage.py up`, so its flags are `up`'s."""
    from django.core.management import get_commands, load_command_class

    commands = get_commands()
    problems, seen = [], 0
    for span in _code_spans():
        for name, rest in re.findall(r"manage\.py\s+([a-z_]+)((?:(?!manage\.py).)*)", span):
            seen += 1
            if name not in commands:
                problems.append(f"`{span}`: no command {name}")
                continue
            known = set(
                load_command_class(commands[name], name).create_parser("manage.py", name)._option_string_actions
            )
            problems += [
                f"`{span}`: {name} has no option {flag}"
                for flag in re.findall(r"--[a-z][a-z-]*", rest)
                if flag not in known
            ]
    assert seen > 30  # the scan works
    up = _options(load_command_class(commands["up"], "up"), "up")
    run_sh = set(re.findall(r"\./run\.sh ((?:--[a-z][a-z-]*))", README))
    assert run_sh, "the README shows ./run.sh with an argument"
    problems += [f"./run.sh {flag}: no option of manage.py up" for flag in sorted(run_sh - up)]
    assert 'manage.py up "$@"' in (ROOT / "run.sh").read_text()  # run.sh passes its arguments on
    assert not problems, "\n".join(problems)


def test_every_command_with_subcommands_lists_them_in_its_row() -> None:
    """`labelstudio {export,export-tags,import}`, `embedded start|stop|status`: a positional argument with a fixed
    set of values is written in the command's row with exactly those values."""
    rows = _table_rows(_section("Commands"), "| command |")
    problems = []
    for name, command in sorted(_project_commands().items()):
        parser = command.create_parser("manage.py", name)
        for action in parser._positionals._group_actions:
            if not action.choices:
                continue
            row = next(r[0] for r in rows if re.search(rf"`(?:manage\.py )?{name}(?:[ `\\]|$)", r[0]))
            written = re.search(rf"{name} (?:\{{([a-z,-]+)\}}|([a-z-]+(?:\\\|[a-z-]+)+))", row)
            values = set(re.split(r",|\\\|", (written.group(1) or written.group(2)))) if written else set()
            if values != set(action.choices):
                problems.append(f"{name}: row says {sorted(values)}, the command takes {sorted(action.choices)}")
    assert not problems, "\n".join(problems)


def _normal_route(path: str) -> str:
    """``/api/videos/{pk}/verdict/`` and ``/api/videos/{id}/verdict`` alike: parameters unnamed, no final slash."""
    return re.sub(r"\{[^}]*\}|<[^>]*>", "{}", path.split("?")[0]).rstrip("/")


def test_every_api_operation_is_in_the_readme_and_every_one_it_names_exists() -> None:
    """A platform engineer reads the README for the API's operations: each operation of the generated OpenAPI schema
    is written there as `METHOD /api/…` (a GET may be its bare path), and each one written there is in the schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    methods = {"get", "post", "put", "patch", "delete"}
    operations = {
        (method.upper(), _normal_route(path))
        for path, item in schema["paths"].items()
        for method in item
        if method in methods
    }
    assert ("POST", "/api/videos") in operations  # the schema works
    spans = _code_spans()
    written = set()
    for span in spans:
        written |= {(m, _normal_route(p)) for m, p in re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/api/\S*)", span)}
    bare = {_normal_route(span) for span in spans if re.fullmatch(r"/api/\S*", span)}
    undocumented = sorted(op for op in operations if op not in written and not (op[0] == "GET" and op[1] in bare))
    assert not undocumented, f"API operations the README never names: {undocumented}"
    unknown = sorted(written - operations)
    assert not unknown, f"named in the README, not in the API: {unknown}"


# Absolute paths the README names inside the containers and hosts, not the site's routes.
FILESYSTEM_ROOTS = ("/app", "/scratch", "/home", "/dev", "/usr", "/var", "/data", "/root", "/etc")


def test_every_site_route_the_readme_names_resolves() -> None:
    """`/readyz`, `/ops/`, `/integrations/endpoints/<id>/`…: each site path the README sends an operator to is routed."""
    from django.urls import Resolver404, resolve

    missing, seen = [], 0
    for span in _code_spans():
        for path in re.findall(r"(?:^|(?<=[ (]))(/[a-z][\w./<>{}…-]*)", span):
            if path.startswith(FILESYSTEM_ROOTS) or "." in path.split("/")[-1]:
                continue
            seen += 1
            try:
                resolve(re.sub(r"<[^>]*>|\{[^}]*\}", "1", path.rstrip("…")))
            except Resolver404:
                missing.append(path)
    assert seen > 20  # the scan works
    assert not missing, f"the README names routes the site does not have: {sorted(set(missing))}"


def test_every_repository_file_the_readme_names_exists() -> None:
    """`workbench/csp.py`, `scripts/s3rver/package-lock.json`, `templates/workbench/api_docs.html`…: a file of the
    checkout the README points to is there (paths under `var/` are made at run time)."""
    files = {
        span
        for span in _code_spans()
        if re.fullmatch(r"[\w.-]+(?:/[\w.-]+)+\.(?:py|html|css|js|ya?ml|txt|json|toml|sh|md|lock)", span)
        and not span.startswith("var/")
    }
    assert len(files) > 10  # the scan works
    # A template is named as Django finds it: under templates/ or an app's templates/.
    folders = [ROOT, ROOT / "templates", *(ROOT / app / "templates" for app in APPS)]
    missing = sorted(path for path in files if not any((folder / path).exists() for folder in folders))
    assert not missing, f"the README names files the checkout does not have: {missing}"


def _settings_defaults() -> dict[str, Any]:
    """``env.x("NAME", default=…)`` of settings.py: each default that is a literal or arithmetic on literals."""
    import ast

    defaults = {}
    for node in ast.walk(ast.parse((ROOT / "workbench" / "settings.py").read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            continue
        for keyword in node.keywords:
            if keyword.arg == "default":
                try:  # 55 * 60, 5 * 2**30: no names, no calls
                    value = eval(compile(ast.Expression(keyword.value), "default", "eval"), {"__builtins__": {}})  # noqa: S307
                except (NameError, TypeError, AttributeError):
                    continue
                defaults[node.args[0].value] = value
    return defaults


def test_the_readme_configuration_defaults_are_the_settings_defaults() -> None:
    """Where a Configuration row's default is a plain number, on/off or a value, one per variable of the row, it is
    what settings fall back to (the operator who leaves a variable unset gets what the table says)."""
    defaults = _settings_defaults()
    switches = {"on": True, "true": True, "off": False, "false": False}
    checked, problems = 0, []
    for row in _table_rows(_section("Configuration"), "| variable |"):
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])
        parts = [part.strip().strip("`") for part in row[1].split(",")]
        if len(parts) != len(names):
            continue
        for name, part in zip(names, parts, strict=True):
            if name not in defaults:
                continue
            if re.fullmatch(r"-?\d+(?:\.\d+)?", part):
                checked += 1
                if float(part) != float(defaults[name]):
                    problems.append(f"{name}: README {part}, settings {defaults[name]!r}")
            elif part.lower() in switches and isinstance(defaults[name], bool):
                checked += 1
                if switches[part.lower()] != defaults[name]:
                    problems.append(f"{name}: README {part}, settings {defaults[name]!r}")
            elif isinstance(defaults[name], (str, list)) and defaults[name]:
                # A word or value (`us-east-1`, offline, `default`) is the default itself; an empty default's cell
                # says in words what happens instead ("embedded PostgreSQL in …"), not checked.
                value = defaults[name] if isinstance(defaults[name], str) else ",".join(defaults[name])
                written = re.match(r"([^\s(]+)", part)
                checked += 1
                if not written or written.group(1).strip("`") != value:
                    problems.append(f"{name}: README {part!r}, settings {defaults[name]!r}")
    assert checked > 70  # the scan works
    assert not problems, "\n".join(problems)


def test_the_readme_lists_the_configuration_variables_compose_passes_on() -> None:
    """ "Compose's own variables (…, besides the ones of the Configuration table it passes on (…))": an operator reads
    that list to know which settings compose forwards from `.env`; every other one needs an override file."""
    text = (ROOT / "compose.yaml").read_text()
    read = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    compose_own = {
        name
        for row in _table_rows(README, "| compose variable |")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0])
    }
    start = README.index("Compose's own variables")
    listed = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README[start : README.index("| compose variable |", start)]))
    assert sorted(read - compose_own - listed) == [], "compose passes these on; the README's list leaves them out"
    assert sorted(listed - read) == [], "listed as passed on, but compose reads none of them"


def test_the_readme_roles_table_names_every_role_group() -> None:
    """An admin puts users in the groups the Roles table names: they are the groups `bootstrap` creates."""
    from workbench.roles import ROLES

    groups = {row[0].strip("`") for row in _table_rows(_section("Roles"), "| group |")}
    assert groups == set(ROLES)


def test_every_metric_the_code_exports_is_in_the_readme_and_every_one_it_names_exists() -> None:
    """An operator writes alerts from the README's list of `/metrics` series: each series our code defines is named
    there (a counter as `NAME_total`, the name the exposition gives it), and each one named there is defined."""
    defined = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            defined |= set(
                re.findall(
                    r"""(?:Counter|Gauge|Histogram|Summary|MetricFamily)\(\s*["'](workbench_[a-z_]+)["']""",
                    path.read_text(),
                )
            )
    assert {"workbench_review_queue_depth", "workbench_signin_failures"} <= defined  # the scan works
    named = {name.removesuffix("_total") for name in re.findall(r"`(workbench_[a-z_]+)", README)}
    assert sorted(defined - named) == [], "exported on /metrics, not in the README"
    assert sorted(named - defined) == [], "named in the README, exported by nothing"


def test_every_variable_the_two_commands_read_is_in_the_readme() -> None:
    """`./run.sh` and `./test.sh` (and `scripts/setup.sh`, which both run) read a few variables of their own
    (`WORKBENCH_TEST_WORKERS`, `TORCH_INDEX_URL`…): each is named in the README, where the operator looks."""
    scripts = ("run.sh", "test.sh", "scripts/setup.sh")
    read = set()
    for script in scripts:
        text = (ROOT / script).read_text()
        read |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(?::[-+=?])", text))
        read |= set(re.findall(r"^([A-Z_][A-Z0-9_]*)=\S+ bash ", text, flags=re.M))  # set for a script it runs
    assert {"WORKBENCH_TEST_WORKERS", "WORKBENCH_BROWSER_TESTS"} <= read  # the scan works
    named = set(re.findall(r"`([A-Z_][A-Z0-9_]*)[`=]", README))
    assert sorted(read - named) == [], "read by the setup/run/test scripts, named nowhere in the README"


def test_every_compose_service_and_profile_the_readme_names_exists() -> None:
    """`docker compose exec web …`, `--scale worker-media=0`, `--profile gpu-media`: wherever the README names a
    service or a profile, compose.yaml has it."""
    services = _compose()["services"]
    profiles = {profile for svc in services.values() for profile in svc.get("profiles", [])}
    text = README.replace("\n", " ")
    named = set(
        re.findall(r"docker compose (?:run --rm(?: --no-deps)?(?: --user \w+)?|exec|stop) ([a-z][a-z-]*)", text)
    )
    named |= set(re.findall(r"--scale ([a-z][a-z-]*)=", text))
    assert {"web", "worker-media", "worker-infer"} <= named  # the scan works
    assert sorted(named - set(services)) == [], "services compose.yaml does not have"
    written = set(re.findall(r"--profile ([a-z][a-z-]*)", text))
    assert written and sorted(written - profiles) == [], f"profiles compose.yaml does not have: {written - profiles}"
    assert profiles <= written, f"compose profiles the README never shows how to start: {profiles - written}"


# Names the README quotes that are not ours to define.
FOREIGN_NAMES = {
    "python3.11": "the interpreter",
    "sys.path": "Python's",
    "requests.post": "the requests library's",
    "add_script_tag": "Playwright's, for browser tests",
    "securityContext.fsGroup": "a Kubernetes pod field",
    "drf_create_token": "DRF's management command, named as one not to use",
    "snapshot_download": "huggingface_hub's",
}


def _our_source_text() -> str:
    """Every file of the apps, bench/, scripts/, templates and our own static files, compose and the Dockerfile
    (tests/ left out: a name only a test still mentions is gone from the product)."""
    folders = (*APPS, "bench", "scripts", "templates", "static")
    suffixes = {".py", ".html", ".js", ".css", ".sh", ".yaml", ".yml", ".json", ".toml"}
    paths = [
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in suffixes and not {"node_modules", "vendor", "migrations"} & set(path.parts)
    ]
    paths += [ROOT / name for name in ("compose.yaml", "compose.gpu.yaml", "Dockerfile", "pyproject.toml")]
    return "\n".join(path.read_text(errors="replace") for path in paths)


def test_every_code_name_the_readme_quotes_exists() -> None:
    """`video_media_verify`, `KeptVerdict`, `tags.try_again`, `workbench.checks.SETTING_CHOICES`: a function, class,
    task, audit event or check the README quotes for an operator to find (in the code, the admin, the audit log)
    is one the code still has; a rename (`queue_time_limit_annotations` → `queue_time_limits`) fails here."""
    import importlib

    source = _our_source_text()
    literals = set(re.findall(r"""["']([\w.]+)["']""", source))
    problems, seen = [], 0
    for span in _code_spans():
        if "import " in span:  # a `python -c "from huggingface_hub import …"` line names other packages' code
            continue
        # snake_case with an underscore, or CamelCase: not a file name (followed by a dot) nor a /metrics series
        # (checked above, exported as `NAME_total`).
        for name in re.findall(
            r"(?<![\w./-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)\b(?!\.\w)", span
        ):
            if name.startswith("workbench_") or name in FOREIGN_NAMES:
                continue
            seen += 1
            if not re.search(rf"\b{name}\b", source):
                problems.append(f"`{span}`: no {name} in the code")
        # a dotted name (an audit event, a check id, a task, a module attribute), not a file
        for dotted in re.findall(r"(?<![\w./-])([a-z]\w*(?:\.[A-Za-z_]\w*)+)(?![\w/(-])", span):
            if dotted in FOREIGN_NAMES or re.search(
                r"\.(py|html|css|js|ya?ml|txt|json|toml|sh|md|lock|jsonl)$", dotted
            ):
                continue
            seen += 1
            if dotted in literals:
                continue
            parts = dotted.split(".")
            found = False
            for cut in range(len(parts) - 1, 0, -1):
                try:
                    target: Any = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                try:
                    for attribute in parts[cut:]:
                        target = getattr(target, attribute)
                    found = True
                except AttributeError:
                    pass
                break
            if not found:
                problems.append(f"`{span}`: {dotted} is neither a name in the code nor importable")
    assert seen > 200  # the scan works
    assert not problems, "\n".join(sorted(set(problems)))


def _heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_to_a_readme_section_finds_its_heading() -> None:
    """The contents line and the cross-references link `#deploying-with-compose`…: a heading renamed leaves a link
    that goes nowhere."""
    anchors = {
        _heading_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", README, flags=re.S), re.M)
    }
    assert "configuration-environment-variables-read-only-in-workbenchsettingspy" in anchors  # the slugs work
    links = re.findall(r"\]\(#([^)\s]+)\)", README)
    assert len(links) >= 5
    assert sorted(set(links) - anchors) == [], "links to no heading of the README"


def test_the_readme_beat_command_writes_its_schedule_where_the_image_user_may() -> None:
    """The image runs as an unprivileged user who cannot write /app, its working folder: `celery -A workbench beat`
    as the README gave it opened `celerybeat-schedule` there and stopped (PermissionError) on a host running the
    image outside compose. The schedule's folder is one the Dockerfile hands to the app's user."""
    rows = _table_rows(_section("Past one machine"), "| worker |")
    [command] = [row[1].strip("`") for row in rows if " beat" in row[1]]
    schedule = re.search(r"--schedule[ =](\S+)", command)
    assert schedule, f"{command}: no --schedule, so beat writes its schedule into /app"
    dockerfile = (ROOT / "Dockerfile").read_text()
    owned = set(re.findall(r"chown (?:-R )?\$\{APP_UID\}:\$\{APP_GID\} ([^\\\n&]+)", dockerfile))
    owned_folders = {folder for line in owned for folder in line.split()}
    assert "/app/var" in owned_folders  # the scan works
    assert str(Path(schedule.group(1)).parent) in owned_folders, (command, owned_folders)


def test_the_commands_table_gives_each_option_its_real_default() -> None:
    """ "`--every N` … (default 100)", "`--queue` … (default `default`)": a default the Commands table writes after an
    option is the one the command's parser has, or, where the parser leaves it unset, the setting it falls back to."""
    from django.conf import settings

    commands = _project_commands()
    checked, problems = 0, []
    for row in _table_rows(_section("Commands"), "| command |"):
        named = [n for n in commands if re.search(rf"`(?:manage\.py )?{n}(?:[ `\\]|$)", row[0])]
        line = " | ".join(row)
        for written in re.finditer(r"\(default `?([^`);,]+)`?[);,]", line):
            options = re.findall(r"--[a-z][a-z-]*", line[: written.start()])
            if not options or not named:
                continue
            option, value = options[-1], written.group(1)
            actions = {
                o: a for n in named for o, a in commands[n].create_parser("manage.py", n)._option_string_actions.items()
            }
            if option not in actions:
                continue
            checked += 1
            default = actions[option].default
            if default is None:
                if not (re.fullmatch(r"[A-Z][A-Z0-9_]+", value) and hasattr(settings, value)):
                    problems.append(f"{named} {option}: README says default {value!r}, the parser has none")
            elif str(default) != value:
                problems.append(f"{named} {option}: README says default {value!r}, the parser {default!r}")
    assert checked >= 5  # the scan works
    assert not problems, "\n".join(problems)


def test_the_production_line_says_which_variables_compose_takes_from_env_and_which_it_sets_itself() -> None:
    """ "`compose.yaml` passes each of these from its environment or `.env` file": an operator who put their managed
    PostgreSQL's `DATABASE_URL` in `.env` got compose's own `postgres` service all the same (compose writes
    `DATABASE_URL` and `REDIS_URL` itself). Each variable of the production line is either read from the
    environment by compose (`${NAME…}` in its value) or named in the paragraph as one compose sets itself."""
    paragraph = README[README.index("Production environment:") :].split("\n\n")[0]
    production = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", paragraph.split(";")[0])) | set(
        re.findall(r"`([A-Z][A-Z0-9_]+)`", paragraph.split(";")[0])
    )
    assert {"WORKBENCH_HTTPS", "DATABASE_URL", "REDIS_URL"} <= production  # the scan works
    said_fixed = re.search(r"compose sets (.+?) itself", paragraph.replace("\n", " "))
    fixed_named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", said_fixed.group(1))) if said_fixed else set()
    problems = []
    for name, svc in _app_services(_compose()).items():
        for variable in sorted(production):
            value = str(svc["environment"].get(variable, ""))
            from_env = f"${{{variable}" in value
            if not from_env and variable not in fixed_named and variable != "DEBUG":
                problems.append(f"{name}: {variable}={value!r} is compose's own, not taken from .env")
            if from_env and variable in fixed_named:
                problems.append(f"{name}: {variable} is taken from .env, the README says compose sets it")
    assert not problems, "\n".join(sorted(set(problems)))


def _results_headings() -> list[str]:
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    return [h.strip() for h in re.findall(r"^#{1,6} (.+)$", text, re.M)]


def test_every_bench_results_section_the_readme_quotes_exists() -> None:
    """`bench/RESULTS.md "Where a contended claim's work goes"`, `bench/RESULTS.md`, "Stage 1"`, its section "History of
    the README's measured figures": a section the README sends the reader to is a heading there (its start)."""
    headings = _results_headings()
    text = README.replace("\n", " ")
    quoted = set()
    for mention in re.finditer(r"bench/RESULTS\.md", text):  # a quoted title in the rest of that sentence
        sentence = re.split(r"\.\s|\|", text[mention.end() : mention.end() + 250])[0]
        quoted |= set(re.findall(r"[\"“]([^\"”]+)[\"”]", sentence))
    assert "History of the README's measured figures" in quoted  # the scan works
    missing = sorted({q for q in quoted if not any(h.startswith(q) for h in headings)})
    assert not missing, f"the README quotes bench/RESULTS.md sections it does not have: {missing}"


def test_every_measured_figure_of_the_readme_is_in_bench_results() -> None:
    """The Measured table gives each row's latest figure and sends the reader to bench/RESULTS.md for how it was
    measured: every number of a row's bold (headline) figures is written there too. The suite's fresh-clone time
    and the claim's p99 of session 45 were in the README only, with nothing behind them."""
    results = (ROOT / "bench" / "RESULTS.md").read_text()
    problems = []
    for what, figure, _goal in _table_rows(_section("Measured"), "| what |"):
        for bold in re.findall(r"\*\*([^*]+)\*\*", figure):
            for number in re.findall(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?|\.\d+)(?![\w])", bold):
                if number not in results:
                    problems.append(f"{what[:50]!r}: {number} (in **{bold}**)")
    assert not problems, "figures of the README's Measured table not in bench/RESULTS.md:\n" + "\n".join(problems)


def test_every_commit_and_file_at_a_commit_the_readme_names_is_in_the_history() -> None:
    """ "After upgrading past `d92c13e`", "`git show 568fe83:bench/stage1_encoders.py`": an operator (and a reader of
    the numbers) looks them up with git; a mistyped or rewritten id sends them nowhere. Skipped in a shallow clone,
    which has no history to look in."""
    import pytest

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    try:
        shallow = git("rev-parse", "--is-shallow-repository")
    except FileNotFoundError:  # no git client
        pytest.skip("no git client here")
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        pytest.skip("no full git history here")
    shown = set(re.findall(r"git show ([0-9a-f]{7,40}):([\w./-]+)", README))
    # A hex word with a letter and a digit, 7 to 12 long, is a commit id (no other such word is in the README).
    commits = {w for w in re.findall(r"\b[0-9a-f]{7,12}\b", README) if re.search(r"[a-f]", w) and re.search(r"\d", w)}
    commits |= {commit for commit, _path in shown}
    assert {"d92c13e", "568fe83"} <= commits and shown  # the scan works
    missing = sorted(c for c in commits if git("cat-file", "-e", f"{c}^{{commit}}").returncode != 0)
    missing += sorted(f"{c}:{p}" for c, p in shown if git("cat-file", "-e", f"{c}:{p}").returncode != 0)
    assert not missing, f"the README names commits or files at a commit that the history does not have: {missing}"
