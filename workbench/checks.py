"""System checks of the deployment's configuration (`manage.py check --deploy`; `migrate` runs them too), and of the
settings that choose among values the code knows (``SETTING_CHOICES``), of the numeric settings' bounds
(``SETTING_BOUNDS``) and of the settings one of which only makes sense below another (``SETTING_ORDERS``): every
`manage.py` command that checks, the web server at start, every Celery worker at start."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
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
    SettingChoice("WHISPER_DEVICE", "moderation.media.extractors.WHISPER_DEVICES"),
    SettingChoice("WHISPER_COMPUTE_TYPE", "moderation.media.extractors.WHISPER_COMPUTE_TYPES"),
    SettingChoice("MEDIA_S3_ADDRESSING_STYLE", "workbench.storage.S3_ADDRESSING_STYLES"),
    SettingChoice("REPRO_FRAME_NEIGHBOURS", "moderation.reproduction.selectors.FRAME_CHANNELS"),
    SettingChoice("REPRO_HNSW_ITERATIVE_SCAN", "moderation.reproduction.selectors.ITERATIVE_SCANS"),
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


# --- Numeric settings' bounds -----------------------------------------------------------------------------------------
# Every `env.int` of settings.py had no bound: a 0 or a negative value for a limit, a retention, a lease or a size made
# the app refuse everything (WORKBENCH_UPLOAD_MAX_BYTES=0: every upload), delete everything (a retention of 0 days) or
# loop (CASCADE_RETRAIN_AFTER_LABELS=0: a retraining at every beat). Nor had an `env.float`: a timeout of 0 failed every
# request to the store (MEDIA_S3_CONNECT_TIMEOUT=0), VLLM_GPU_MEMORY_UTILIZATION=85 (a percent, not a fraction) failed
# the offline engine on the GPU worker, TRAINING_GATE_MIN_GAIN=-0.05 let a worse candidate pass the release gate.
# Checked with the choices, when a process starts.


@dataclass(frozen=True)
class SettingBound:
    """The bounds of one numeric setting. ``variable``: the environment variable settings.py reads with `env.int`
    (or `env.float`: ``real``) (the one an operator sets). ``minimum``, ``maximum`` (None: none that means anything):
    the values allowed, both included, unless ``above``: then the value must be more than ``minimum`` (a timeout, a
    share: 0 is no value at all, and there is no least one). ``why``: what a value outside does, or what 0 means where
    0 is allowed. ``setting``: where settings keeps the value read, when not under the variable's own name, with the
    keys inside it after dots (``TASK_TIME_LIMITS_S.media.0``). A ``real`` setting takes an integer too; neither takes
    nan or inf (a settings module's: django-environ refuses them; every comparison with nan is false)."""

    variable: str
    minimum: float
    maximum: float | None = None
    why: str = ""
    setting: str = ""
    above: bool = False
    real: bool = False


def _real(variable: str, minimum: float, maximum: float | None, why: str, *, above: bool = False) -> SettingBound:
    """A row for a variable settings.py reads with `env.float`."""
    return SettingBound(variable, minimum, maximum, why, above=above, real=True)


_OFF = "0: off"
_FRACTION = "a fraction: 0.85, not 85"
# The one table: each `env.int` and `env.float` of settings.py (tests/workbench/test_setting_bounds.py fails on one
# without a row).
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
    # env.float
    _real("MEDIA_CHECK_CACHE_S", 0, None, "0: the store is asked on every render"),
    _real("MEDIA_S3_CONNECT_TIMEOUT", 0, None, "seconds to connect to the store: at 0 no request is sent", above=True),
    _real("MEDIA_S3_READ_TIMEOUT", 0, None, "seconds to wait for the store's answer: at 0 none comes", above=True),
    _real("MODEL_ARTIFACT_CHECK_S", 0, None, "0: the store is asked at every use of a shared model"),
    _real("KEYFRAME_FPS", 0, 120, "candidate keyframes per second of video: at 0 none is taken", above=True),
    _real("OCR_CACHE_MIN_CORRELATION", 0, 1, "a correlation: below 0 a different line reuses another's text"),
    _real("WHISPER_BATCHED_MIN_SPEECH_S", 0, None, "seconds of speech; 0: every video batched"),
    _real("EVALUATION_HEARTBEAT_SECONDS", 0, None, "an evaluation's beat: at 0 it writes without pause", above=True),
    _real("VLLM_GPU_MEMORY_UTILIZATION", 0, 1, f"the GPU memory vLLM's engine takes, {_FRACTION}", above=True),
    _real("CASCADE_ESCALATE_ENTROPY", 0, 1, "a normalised entropy: 0 escalates all but the certain, 1 none"),
    # A retraining refuses a target under 0.5 (``stage1.routing``): set so, every stage-1 retraining failed hours later.
    _real("CASCADE_TARGET_ACCURACY", 0.5, 1, f"{_FRACTION}; a binary guess is right half the time"),
    _real("TAG_VLM_SNAP_THRESHOLD", 0, 1, "a cosine: at 0 every phrase snaps to some tag", above=True),
    _real("WEBHOOK_TIMEOUT_SECONDS", 0, None, "seconds a delivery waits: at 0 every delivery fails", above=True),
    _real("WEBHOOK_RETRY_BASE_SECONDS", 0, None, "the first retry's wait: at 0 every retry at once", above=True),
    _real("WEBHOOK_RETRY_MAX_SECONDS", 0, None, "the longest retry wait: at 0 every retry at once", above=True),
    _real("WEBHOOK_SWEEP_GRACE_SECONDS", 0, None, "0: re-queued as soon as past due"),
    _real("TRAINING_GATE_MIN_GAIN", 0, None, "0: strictly better; below, a worse candidate passes the gate"),
    _real("SHADOW_RETRY_BASE_SECONDS", 0, None, "the first retry's wait: at 0 every retry at once", above=True),
    _real("SHADOW_RETRY_MAX_SECONDS", 0, None, "the longest retry wait: at 0 every retry at once", above=True),
    _real("WORKER_HEARTBEAT_SECONDS", 0, None, "a worker's beat: at 0 it writes to Redis without pause", above=True),
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


def _number(value: float) -> str:
    """A bound as the README and an operator write it: 1, 0.85, 3600 (not 3600.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def bound_allowed(row: SettingBound) -> str:
    """The row's range in words: "1 or more", "16 to 7680", "more than 0", "more than 0, up to 1"."""
    low, high = _number(row.minimum), None if row.maximum is None else _number(row.maximum)
    if row.above:
        return f"more than {low}" if high is None else f"more than {low}, up to {high}"
    return f"{low} or more" if high is None else f"{low} to {high}"


def bound_refusal(row: SettingBound, value: Any) -> str:
    """What is wrong with ``value`` for the row, or empty when it is within its bounds."""
    if value is None:  # a setting only some deployments have, or one set elsewhere (CONN_MAX_AGE by the URL: None)
        return ""
    kinds = (int, float) if row.real else (int,)
    number = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if (
        number
        and (row.minimum < value if row.above else row.minimum <= value)
        and (row.maximum is None or value <= row.maximum)
    ):
        return ""
    return f"{row.variable}={value!r} is out of range: allowed {bound_allowed(row)} ({row.why})."


@register(Tags.compatibility, SETTINGS_TAG)
def setting_bounds_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each numeric setting of ``SETTING_BOUNDS`` is within its bounds: workbench.E005, naming the variable, the
    value and the allowed range."""
    return [
        Error(refusal, hint=f"Set the {row.variable} environment variable within the range.", id="workbench.E005")
        for row in SETTING_BOUNDS
        if (refusal := bound_refusal(row, bound_value(row)))
    ]


# --- Settings one of which only makes sense below another ---------------------------------------------------------------
# Each within its own bounds, two settings could still contradict each other, found out only when it happened: a soft
# time limit at or above its hard one never fired (the hard kill came first, the failure went unrecorded on the video);
# VLM_MAX_NEW_TOKENS above half a context was cut to that half (fitting.answer_tokens) and a long verdict stopped
# mid-JSON; a worker beating less often than WORKER_SEEN_SECONDS dropped out of /readyz between beats (and its
# healthcheck restarted it); a retry's base wait above its longest made every retry wait the longest.


@dataclass(frozen=True)
class SettingOrder:
    """``lower`` must be below ``upper`` (``or_equal``: at most it), or below ``share`` of it (½: half). Each is the
    variable of a ``SETTING_BOUNDS`` row (its value read as the row reads it), or the dotted path of a constant the
    code keeps (a number or a timedelta, in seconds). ``off``: a value of 0 on either side means "none" (a time limit,
    a bound): no order then. ``why``: what goes wrong otherwise."""

    lower: str
    upper: str
    why: str
    or_equal: bool = False
    share: float = 1.0
    off: bool = False


_SOFT_HARD = "the hard limit kills the task first, its soft limit never fires and no failure is recorded on the item"
_CUT = "its answer is cut to half the context (fitting.answer_tokens), a verdict's JSON mid-way"
_SETTLED = "every retry waits the longest: the base wait means nothing"


# The one table of orders (workbench.E006). A pair is left out while either side is outside its bounds (E005 says so).
SETTING_ORDERS: tuple[SettingOrder, ...] = (
    *(
        SettingOrder(f"{queue}_TASK_SOFT_TIME_LIMIT_S", f"{queue}_TASK_TIME_LIMIT_S", _SOFT_HARD, off=True)
        for queue in ("MEDIA", "DEFAULT", "INFER", "TRAIN")
    ),
    SettingOrder("VLM_MAX_NEW_TOKENS", "TRANSFORMERS_MAX_CONTEXT_TOKENS", _CUT, or_equal=True, share=0.5),
    SettingOrder("VLM_MAX_NEW_TOKENS", "VLLM_MAX_MODEL_LEN", _CUT, or_equal=True, share=0.5),
    SettingOrder("TAG_VLM_MAX_NEW_TOKENS", "TRANSFORMERS_MAX_CONTEXT_TOKENS", _CUT, or_equal=True, share=0.5),
    SettingOrder("TAG_VLM_MAX_NEW_TOKENS", "VLLM_MAX_MODEL_LEN", _CUT, or_equal=True, share=0.5),
    SettingOrder(
        "WORKER_HEARTBEAT_SECONDS",
        "WORKER_SEEN_SECONDS",
        "a worker's beat expires before the next: /readyz and its healthcheck see it gone between beats",
    ),
    SettingOrder(
        "EVALUATION_HEARTBEAT_SECONDS",
        "training.services.HEARTBEAT_STALE_AFTER",
        "the reaper fails a running evaluation that has not beaten for that long: every long one, alive or not",
    ),
    *(
        SettingOrder(
            "WEBHOOK_TIMEOUT_SECONDS",
            limit,
            "a delivery to a slow receiver (the default queue's task) is stopped by the task's limit before its own "
            "timeout: the attempt ends with no reason recorded and waits for its lease to lapse",
            off=True,
        )
        for limit in ("DEFAULT_TASK_SOFT_TIME_LIMIT_S", "DEFAULT_TASK_TIME_LIMIT_S")
    ),
    SettingOrder("WEBHOOK_RETRY_BASE_SECONDS", "WEBHOOK_RETRY_MAX_SECONDS", _SETTLED, or_equal=True),
    SettingOrder("SHADOW_RETRY_BASE_SECONDS", "SHADOW_RETRY_MAX_SECONDS", _SETTLED, or_equal=True),
    SettingOrder(
        "KEYFRAME_SELECT_K",
        "KEYFRAME_MAX_CANDIDATES",
        "a video never has that many candidates to select from",
        or_equal=True,
        off=True,
    ),
)


def _order_side(name: str) -> tuple[Any, str]:
    """A side's value and how a message names it: ``NAME=value`` for a variable, the constant's path and its
    seconds for a constant. None where the value is out of its bounds (E005 reports it) or absent."""
    row = next((row for row in SETTING_BOUNDS if row.variable == name), None)
    if row is None:
        value: Any = import_string(name)
        seconds = value.total_seconds() if isinstance(value, timedelta) else value
        return seconds, f"{name} ({_number(seconds)} s)"
    value = bound_value(row)
    if value is None or bound_refusal(row, value):
        return None, ""
    return value, f"{name}={_number(value)}"


def order_refusal(order: SettingOrder) -> str:
    """What is wrong with the pair as set, or empty when ``lower`` is below ``upper`` (or either is off)."""
    (low, low_said), (high, high_said) = _order_side(order.lower), _order_side(order.upper)
    if low is None or high is None or (order.off and (low == 0 or high == 0)):
        return ""
    limit = high * order.share
    if low < limit or (order.or_equal and low <= limit):
        return ""
    relation = "at most" if order.or_equal else "below"
    if order.share == 1:
        return f"{low_said} must be {relation} {high_said}: {order.why}."
    of = "half" if order.share == 0.5 else _number(order.share)
    return f"{low_said} must be {relation} {of} of {high_said} ({_number(limit)}): {order.why}."


def _order_hint(order: SettingOrder) -> str:
    if any(row.variable == order.upper for row in SETTING_BOUNDS):
        return f"Lower {order.lower} or raise {order.upper} (the environment variables)."
    return f"Lower the {order.lower} environment variable ({order.upper} is the code's)."


def _whisper_refusal() -> str:
    """faster-whisper hands WHISPER_COMPUTE_TYPE to CTranslate2, which refuses a half-precision type on the CPU
    (float16, bfloat16, int8_float16, int8_bfloat16): the media worker failed each video's transcription on it."""
    device, compute_type = settings.WHISPER_DEVICE, settings.WHISPER_COMPUTE_TYPE
    runs_on_cpu: Mapping[str, bool] = import_string("moderation.media.extractors.WHISPER_COMPUTE_TYPES")
    if device != "cpu" or runs_on_cpu.get(compute_type, True):
        return ""
    on_cpu = ", ".join(name for name, cpu in runs_on_cpu.items() if cpu)
    return (
        f"WHISPER_COMPUTE_TYPE={compute_type} does not run on WHISPER_DEVICE=cpu: CTranslate2 refuses it there "
        f"(each video's transcription failed on the media worker); on the CPU it takes one of: {on_cpu}."
    )


@register(Tags.compatibility, SETTINGS_TAG)
def setting_orders_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Each pair of ``SETTING_ORDERS`` is in order, and WHISPER_COMPUTE_TYPE runs on WHISPER_DEVICE: workbench.E006,
    naming both variables, their values and which to change."""
    errors: list[CheckMessage] = [
        Error(refusal, hint=_order_hint(order), id="workbench.E006")
        for order in SETTING_ORDERS
        if (refusal := order_refusal(order))
    ]
    if refusal := _whisper_refusal():
        hint = "Set WHISPER_COMPUTE_TYPE to int8 (or another of those), or WHISPER_DEVICE=cuda on a GPU worker."
        errors.append(Error(refusal, hint=hint, id="workbench.E006"))
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


def uncollected_static_warning() -> str:
    """What the web server says at its start when the static files' manifest is missing: with a manifest storage
    (production's) every page that names a static file answers 500 until ``collectstatic`` has run; the image runs
    it at build and ``manage.py up`` at each start, but a hand-started gunicorn after a ``git pull`` did not say why.
    Empty when the storage keeps no manifest or the manifest is there."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.core.files.storage import storages

    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin) or storage.exists(storage.manifest_name):
        return ""
    return (
        f"Static files are not collected ({storage.manifest_name} is missing in {settings.STATIC_ROOT}): every page "
        "will answer 500 until `manage.py collectstatic --noinput` has run; run it, then restart the web server."
    )
