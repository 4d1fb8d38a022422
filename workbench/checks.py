"""System checks of the deployment's configuration (`manage.py check --deploy`; `migrate` runs them too), and of the
settings that choose among values the code knows (``SETTING_CHOICES``: every `manage.py` command that checks, the web
server at start, every Celery worker at start)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string


def secret_key_refusal() -> str:
    """Why this process must not serve: it would sign with the development key (no SECRET_KEY, no key file of
    `manage.py up`) while DEBUG is off. Empty when it may. Called by the web server (workbench/wsgi.py) and by
    Celery workers and beat (workbench/celery.py) before they take anything, never by tools that import settings."""
    if not settings.SECRET_KEY_IS_DEVELOPMENT_KEY or settings.DEBUG or settings.TESTING:
        return ""
    return (
        "SECRET_KEY is not set. Set it to 50+ random characters, the same on web, every worker and beat "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'); DEBUG=1 for development only."
    )


def require_secret_key() -> None:
    from django.core.exceptions import ImproperlyConfigured

    if refusal := secret_key_refusal():
        raise ImproperlyConfigured(refusal)


def longest_task_wait_s() -> tuple[float, str]:
    """The longest a task's message may stay unacknowledged on purpose, and what sets it: a task's hard time limit
    (acks_late: acknowledged only when it ends) or the longest countdown a retry waits before it may run."""
    from workbench.celery import app
    from workbench.storage import STORAGE_RETRIES, storage_retry_delay

    app.loader.import_default_modules()  # every app's tasks module, so each task's options are known
    waits: list[tuple[float, str]] = [
        (float(task.time_limit), f"{name}'s time limit")
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and getattr(task, "time_limit", None)
    ]
    waits.append((float(storage_retry_delay(STORAGE_RETRIES)), "a media-storage retry's countdown"))
    waits.append((float(settings.WEBHOOK_RETRY_MAX_SECONDS), "WEBHOOK_RETRY_MAX_SECONDS (a webhook retry's countdown)"))
    return max(waits)


@register(Tags.compatibility, deploy=True)
def visibility_timeout_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """Redis hands an unacknowledged message to another worker after the visibility timeout: below the longest
    running task or retry countdown, a task still running (or still waiting to run) is delivered a second time."""
    visibility = float(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600))
    longest, what = longest_task_wait_s()
    if visibility > longest:
        return []
    return [
        Warning(
            f"CELERY_VISIBILITY_TIMEOUT ({visibility:.0f} s) is not above {what} ({longest:.0f} s): Redis would "
            "deliver such a task to a second worker while the first still runs it or waits to.",
            hint=f"Set CELERY_VISIBILITY_TIMEOUT above {longest:.0f} (default 21600).",
            id="workbench.W001",
        )
    ]


# --- Settings that choose among values the code knows --------------------------------------------------------------
# A typo in one (KEYFRAME_SCORER=clipp, TRAINING_LAUNCHER=acelerate) showed only when a task read it, hours later on a
# worker, or never: some read anything unknown as their default (MEDIA_STORAGE as local, TRAINING_LAUNCHER as in
# process, a TRAINING_GATE_MARGINS key as no margin at all). Checked here when a process starts (MEDIA_STORAGE and
# LOG_FORMAT are refused by settings.py itself, which every process imports first).


@dataclass(frozen=True)
class SettingChoice:
    """One setting the code reads by value. ``choices``: the dotted path of the collection the code itself reads the
    value against (a tuple, a mapping's keys, an enum's values), so the choices are never written twice; by path,
    since workbench imports no app. ``many``: the setting is a list (each item one of the choices) or a mapping
    (each key one). ``casefold``: the code lower-cases the value first. ``parse``, instead of ``choices``: the dotted
    path of the function the code parses the value with, raising ValueError with the form it wants."""

    name: str
    choices: str = ""
    many: bool = False
    casefold: bool = False
    parse: str = ""


# The one table: each setting the code branches on by value, and where the code keeps what it may be.
SETTING_CHOICES: tuple[SettingChoice, ...] = (
    SettingChoice("READYZ_REQUIRED_QUEUES", "workbench.queues.TaskQueue", many=True),
    SettingChoice("KEYFRAME_SCORER", "moderation.media.analyzers.KEYFRAME_SCORERS", casefold=True),
    SettingChoice("KEYFRAME_SELECTION", "moderation.media.aks.STRATEGIES"),
    SettingChoice("PATCH_SALIENCY", "moderation.media.analyzers.PATCH_SALIENCY_METHODS", casefold=True),
    SettingChoice("OCR_DEVICE", "moderation.media.analyzers.OCR_DEVICES", casefold=True),
    SettingChoice("REPRO_FRAME_NEIGHBOURS", "moderation.reproduction.selectors.FRAME_CHANNELS"),
    SettingChoice("REPRO_PDQ_CHUNKS", parse="moderation.reproduction.pdq_index.layout_parse"),
    SettingChoice("TRAINING_LAUNCHER", "training.runners.common.TRAINING_LAUNCHERS"),
    SettingChoice("TRAINING_GATE_PRIMARY_METRIC", "training.release.GATE_METRICS"),
    SettingChoice("TRAINING_GATE_MARGINS", "training.release.GATE_METRICS", many=True),
)

# The check's tag: a worker runs only these at its start (``settings_refusal``), not the web's URL and admin checks.
SETTINGS_TAG = "settings"


def _allowed(row: SettingChoice) -> list[str]:
    found = import_string(row.choices)
    if isinstance(found, type) and issubclass(found, Enum):  # an enum: its values
        return [str(member.value) for member in found]
    return [str(key) for key in found]  # a tuple, a set, a mapping's keys


def _choice_errors(row: SettingChoice, value: Any) -> list[CheckMessage]:
    if row.parse:
        parse: Callable[[str], Any] = import_string(row.parse)
        try:
            parse(str(value))
        except ValueError as exc:
            return [
                Error(
                    f"{row.name}={value!r} is refused: {exc}", hint=f"Set {row.name} as it says.", id="workbench.E004"
                )
            ]
        return []
    allowed = _allowed(row)
    said = ", ".join(allowed)

    def known(item: Any) -> bool:
        text = str(item)
        return (text.lower() if row.casefold else text) in allowed

    if not row.many:
        if known(value):
            return []
        return [
            Error(
                f"{row.name}={value!r} is not one of: {said}.",
                hint=f"Set the {row.name} environment variable to one of them.",
                id="workbench.E001",
            )
        ]
    if isinstance(value, Mapping):
        unknown = [key for key in value if not known(key)]
        what, hint, id_ = "has the key", f"Key {row.name} (JSON) by those only.", "workbench.E003"
    elif isinstance(value, Collection) and not isinstance(value, str):
        unknown = [item for item in value if item and not known(item)]
        what, hint, id_ = "names", f"Name only those in {row.name} (comma-separated).", "workbench.E002"
    else:
        return [Error(f"{row.name}={value!r} is not a list of: {said}.", id="workbench.E002")]
    return [Error(f"{row.name} {what} {str(item)!r}, not one of: {said}.", hint=hint, id=id_) for item in unknown]


@register(Tags.compatibility, SETTINGS_TAG)
def setting_choices_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each setting of ``SETTING_CHOICES`` holds a value the code knows: workbench.E001 a value not among its choices,
    E002 a list item, E003 a mapping key, E004 a value its parser refuses. The message names the setting, the value
    and what it may be."""
    errors: list[CheckMessage] = []
    for row in SETTING_CHOICES:
        errors += _choice_errors(row, getattr(settings, row.name))
    return errors


def settings_refusal() -> str:
    """Why this process must not start: the settings checks' errors (``SETTINGS_TAG``), one a line; empty when none.
    A Celery worker runs no system checks of its own: a typo would show only when a task read the setting."""
    from django.core.checks import run_checks

    errors = [m for m in run_checks(tags=[SETTINGS_TAG]) if m.is_serious() and not m.is_silenced()]
    return "\n".join(str(m) for m in errors)


def require_valid_settings() -> None:
    from django.core.exceptions import ImproperlyConfigured

    if refusal := settings_refusal():
        raise ImproperlyConfigured(refusal)
