"""The workbench's own periodic work."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workbench.tasks.purge_csp_violations")
def purge_csp_violations() -> int:
    """Beat, daily: delete CSP violation rows of days older than ``CSP_REPORT_RETENTION_DAYS``."""
    from workbench.csp_reports import csp_violations_purge

    return csp_violations_purge()
