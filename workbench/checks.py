"""System checks of the deployment's configuration (`manage.py check --deploy`; `migrate` runs them too), and of the
settings that choose among values the code knows (``SETTING_CHOICES``) and of the integer settings' bounds
(``SETTING_BOUNDS``): every `manage.py` command that checks, the web server at start, every Celery worker at start."""

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


# --- Integer settings' bounds -----------------------------------------------------------------------------------------
# Every `env.int` of settings.py had no bound: a 0 or a negative value for a limit, a retention, a lease or a size made
# the app refuse everything (WORKBENCH_UPLOAD_MAX_BYTES=0: every upload), delete everything (a retention of 0 days) or
# loop (CASCADE_RETRAIN_AFTER_LABELS=0: a retraining at every beat). Checked with the choices, when a process starts.


@dataclass(frozen=True)
class SettingBound:
    """The bounds of one integer setting. ``variable``: the environment variable settings.py reads with `env.int`
    (the one an operator sets). ``minimum``, ``maximum`` (None: none that means anything): the values allowed, both
    included. ``why``: what a value outside does, or what 0 means where 0 is allowed. ``setting``: where settings
    keeps the value read, when not under the variable's own name, with the keys inside it after dots
    (``TASK_TIME_LIMITS_S.media.0``)."""

    variable: str
    minimum: int
    maximum: int | None = None
    why: str = ""
    setting: str = ""


_OFF = "0: off"
# The one table: each `env.int` of settings.py (tests/workbench/test_setting_bounds.py fails on one without a row).
# SIGNIN_FAILURES_PER_ADDRESS and the other counts read by ``_count_at_least_one`` are refused in settings.py itself.
SETTING_BOUNDS: tuple[SettingBound, ...] = (
    SettingBound("SECURE_HSTS_SECONDS", 0, None, "0: no HSTS header (Django's own meaning)"),
    SettingBound("DATABASE_CONN_MAX_AGE", 0, None, "0: a connection per request", "DATABASES.default.CONN_MAX_AGE"),
    SettingBound("CELERY_VISIBILITY_TIMEOUT", 1, None, "below 1 Redis redelivers every running task at once"),
    SettingBound("WORKER_MAX_MEMORY_PER_CHILD_MB", 0, None, f"{_OFF} (no limit); below, a child replaced each task"),
    SettingBound("WORKER_MAX_TASKS_PER_CHILD", 0, None, f"{_OFF} (no limit)"),
    SettingBound("SOLO_WORKER_MAX_MEMORY_MB", 0, None, f"{_OFF} (never restart)"),
    SettingBound("MEDIA_TASK_SOFT_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.media.0"),
    SettingBound("MEDIA_TASK_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.media.1"),
    SettingBound("DEFAULT_TASK_SOFT_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.default.0"),
    SettingBound("DEFAULT_TASK_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.default.1"),
    SettingBound("INFER_TASK_SOFT_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.infer.0"),
    SettingBound("INFER_TASK_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.infer.1"),
    SettingBound("TRAIN_TASK_SOFT_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.train.0"),
    SettingBound("TRAIN_TASK_TIME_LIMIT_S", 0, None, f"{_OFF} (no limit)", "TASK_TIME_LIMITS_S.train.1"),
    SettingBound("MEDIA_URL_EXPIRE_SECONDS", 1, 7 * 24 * 3600, "S3 presigns for 1 s to 7 days; 0 links expire at once"),
    SettingBound("MEDIA_S3_MAX_ATTEMPTS", 1, None, "the first attempt counts: below 1 nothing is fetched"),
    SettingBound("MEDIA_CACHE_MAX_BYTES", 0, None, "0: the node keeps nothing cached"),
    SettingBound("WORKBENCH_UPLOAD_MAX_BYTES", 1, None, "below 1 every upload is refused"),
    SettingBound("CSP_REPORT_RETENTION_DAYS", 1, None, "today counts as one: below 1 every report is deleted"),
    SettingBound("KEYFRAME_THUMB_WIDTH", 16, 7680, "a keyframe thumbnail's width in pixels"),
    SettingBound("KEYFRAME_MAX_CANDIDATES", 0, None, f"{_OFF} (no bound)"),
    SettingBound("VIDEO_MAX_PIXELS", 0, None, f"{_OFF} (no bound)"),
    SettingBound("KEYFRAME_SELECT_K", 1, None, "below 1 no keyframe is selected"),
    SettingBound("PATCH_TOP_K", 1, None, "below 1 no patch is kept"),
    SettingBound("OCR_MAX_FRAMES", 1, None, "below 1 no frame is read"),
    SettingBound("OCR_DET_LIMIT_SIDE_LEN", 32, None, "the detector works on sides of 32 pixels or more"),
    SettingBound("OCR_THREADS", 1, None, "onnxruntime threads per OCR session"),
    SettingBound("OCR_CHANGE_DISTANCE", 0, 256, "bits between two PDQ hashes (256 bits); 0: every changed frame"),
    SettingBound("OCR_DET_BATCH", 1, None, "a batch of at least one crop"),
    SettingBound("OCR_REC_BATCH", 1, None, "a batch of at least one line"),
    SettingBound("WHISPER_BATCH_SIZE", 1, None, "a batch of at least one segment"),
    SettingBound("REPRO_HNSW_EF_SEARCH", 1, 1000, "pgvector's hnsw.ef_search takes 1 to 1000"),
    SettingBound("REPRO_VECTOR_SWEEP_BATCH", 1, None, "below 1 the sweep never advances"),
    SettingBound("VLM_MAX_NEW_TOKENS", 1, None, "below 1 the model answers nothing"),
    SettingBound("TRANSFORMERS_MAX_CONTEXT_TOKENS", 1, None, "a prompt's tokens"),
    SettingBound("TRANSFORMERS_BATCH_TOKENS", 1, None, "a batch's tokens"),
    SettingBound("VLLM_MAX_MODEL_LEN", 1, None, "a prompt's tokens"),
    SettingBound("CASCADE_MIN_REVIEWED", 1, None, "reviewed items before the live curve is used"),
    SettingBound("CASCADE_MIN_TRAIN_LABELS", 2, None, "one label of each kind at least: below, no minimum at all"),
    SettingBound("CASCADE_RETRAIN_AFTER_LABELS", 1, None, "below 1 beat retrains stage 1 every time"),
    SettingBound("REVIEW_LEASE_SECONDS", 1, None, "below 1 every claim has expired when made"),
    SettingBound("TAG2COT_OPEN_LIMIT", 1, None, "below 1 a press opens nothing"),
    SettingBound("ROUTING_REPAIR_BATCH", 1, None, "below 1 a click repairs nothing"),
    SettingBound("KEPT_VERDICT_RETENTION_DAYS", 1, None, "below 1 a kept answer is purged before its retry"),
    SettingBound("IMPACT_PREVIEW_RETENTION_DAYS", 1, None, "below 1 a preview is deleted once made"),
    SettingBound("TAG_RANKER_MIN_EVENTS", 0, None, "0: fitted from what there is; a negative one fails each run"),
    SettingBound("TAG_VLM_MAX_NEW_TOKENS", 1, None, "below 1 the model answers nothing"),
    SettingBound("REVIEW_STATS_MAX_AGE_SECONDS", 0, None, "0: counted on every request"),
    SettingBound("INTEGRATION_TOKEN_LIFETIME_DAYS", 1, 36500, "below 1 a token has expired when made; 100 years most"),
    SettingBound("API_TOKEN_LIFETIME_DAYS", 1, 36500, "below 1 a token has expired when made; 100 years most"),
    SettingBound("WEBHOOK_MAX_ATTEMPTS", 1, None, "below 1 no delivery is tried"),
    SettingBound("WEBHOOK_DISABLE_AFTER_FAILURES", 1, None, "below 1 an endpoint is disabled before it fails"),
    SettingBound("MAX_QUEUED_GPU_JOBS", 0, None, f"{_OFF} (no cap)"),
    SettingBound("SHADOW_MAX_ATTEMPTS", 1, None, "below 1 no shadow decision is tried"),
    SettingBound("WORKER_SEEN_SECONDS", 1, None, "below 1 no worker is ever seen"),
    SettingBound("WEB_CONCURRENCY", 1, None, "gunicorn's worker processes"),
    SettingBound("WEB_TIMEOUT", 0, None, "0: no timeout (gunicorn's meaning)"),
    SettingBound("WEB_GRACEFUL_TIMEOUT", 0, None, "0: requests in flight are cut at a stop"),
)


def bound_value(row: SettingBound) -> Any:
    """The value settings keeps for the row's variable (None where the setting or a key inside it is absent)."""
    name, *keys = (row.setting or row.variable).split(".")
    value: Any = getattr(settings, name, None)
    for key in keys:
        if value is None:
            return None
        value = value[int(key)] if isinstance(value, (list, tuple)) else value.get(key)
    return value


def bound_refusal(row: SettingBound, value: Any) -> str:
    """What is wrong with ``value`` for the row, or empty when it is within its bounds."""
    if value is None:  # a setting only some deployments have, or one set elsewhere (CONN_MAX_AGE by the URL: None)
        return ""
    allowed = f"{row.minimum} to {row.maximum}" if row.maximum is not None else f"{row.minimum} or more"
    number = isinstance(value, int) and not isinstance(value, bool)
    if number and row.minimum <= value and (row.maximum is None or value <= row.maximum):
        return ""
    return f"{row.variable}={value!r} is out of range: allowed {allowed} ({row.why})."


@register(Tags.compatibility, SETTINGS_TAG)
def setting_bounds_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each integer setting of ``SETTING_BOUNDS`` is within its bounds: workbench.E005, naming the variable, the
    value and the allowed range."""
    return [
        Error(refusal, hint=f"Set the {row.variable} environment variable within the range.", id="workbench.E005")
        for row in SETTING_BOUNDS
        if (refusal := bound_refusal(row, bound_value(row)))
    ]


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
