"""What an operator deploying the workbench reads — README.md and compose.yaml — agrees with the code.

The README's tables (settings read from the environment, management commands and their options, beat's
periodic tasks and their queues, the workers' queues) and compose.yaml are checked against what the code
reads, defines and routes, so neither can drift from it unnoticed again.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

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

_ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
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


_EVERY = {"s": 1, "min": 60, "h": 3600}


def test_every_beat_task_is_in_the_readme_with_its_interval_and_queue() -> None:
    from workbench.celery import app

    rows = _table_rows(_section("Past one machine"), "| beat task |")
    documented = {}
    for task, every, queue, _what in rows:
        amount, unit = every.split()
        documented[task.strip("`")] = (float(amount) * _EVERY[unit], queue)
    scheduled = {
        entry["task"]: (float(entry["schedule"]), TASK_ROUTES[entry["task"]].value)
        for entry in app.conf.beat_schedule.values()
    }
    assert "moderation.inference.tasks.purge_kept_verdicts" in scheduled
    assert documented == scheduled


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
