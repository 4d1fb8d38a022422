"""System checks of the deployment's configuration (`manage.py check --deploy`; `migrate` runs them too)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


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
