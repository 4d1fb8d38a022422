"""The one home of a background job's recorded state: what a screen shows of work queued on Celery.

A request row (a stage-1 training, a decision's re-run, a vocabulary import) inherits ``BackgroundJob``:
queued when it is asked for and its message sent after the commit, running once a worker took it,
then done or failed with a reason a user can read. ``job_start`` and ``job_finish`` are the two writes
every such task makes around its work, under the row's lock, so that a second delivery of the message
(a redelivery after a lost worker, a resend after a lost message) neither runs finished work again nor
overwrites the result of the delivery that finished first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import models, transaction
from django.utils import timezone


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class BackgroundJob(models.Model):
    """Who asked, the state, why it failed, and when it was asked for, sent, started and ended."""

    Status = JobStatus
    OPEN = (JobStatus.QUEUED, JobStatus.RUNNING)

    requested_by = models.ForeignKey("auth.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the request was last handed to the broker (a resend after a lost message moves it).
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    # Queued this long after its message was sent: the message may have been lost (a broker restart, a
    # send that failed after the commit); asking again sends it again, the task ignores a second delivery.
    RESEND_AFTER = timedelta(minutes=5)
    # Running with no progress this long after it started (or was last sent): its worker was lost (Redis
    # redelivers only after the visibility timeout, hours later). Each kind sets it from its task's length.
    STALLED_AFTER = timedelta(hours=1)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def is_stalled(self, *, now: datetime) -> bool:
        """Running, but neither started nor sent again within ``STALLED_AFTER``: its worker is gone."""
        if self.status != JobStatus.RUNNING:
            return False
        last = max((t for t in (self.started_at, self.sent_at) if t is not None), default=None)
        return last is None or last <= now - self.STALLED_AFTER

    def may_resend(self, *, now: datetime) -> bool:
        """Queued past ``RESEND_AFTER`` or stalled: asking again should send its message again."""
        if self.status == JobStatus.QUEUED:
            return self.sent_at is None or self.sent_at <= now - self.RESEND_AFTER
        return self.is_stalled(now=now)


Job = TypeVar("Job", bound=BackgroundJob)


def job_start(
    job_type: type[Job], pk: int, /, *, from_status: tuple[str, ...] = (JobStatus.QUEUED,)
) -> tuple[Job, bool]:
    """Mark the job running (committed, so screens show it) if its status is one of ``from_status``.

    Returns the row and whether this delivery should do the work: ``False`` for a job already started
    (``from_status`` left at queued) or finished, which the caller returns as it is.
    """
    with transaction.atomic():
        job = job_type._default_manager.select_for_update().get(pk=pk)
        if job.status not in from_status:
            return job, False
        job.status, job.started_at = JobStatus.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    return job, True


def job_finish(job_type: type[Job], pk: int, /, **fields: Any) -> Job:
    """Record how a running job ended (``status`` and the result fields) with its end time.

    A job no longer running (a twin delivery finished it first, or it was marked stalled) is left as it is.
    """
    with transaction.atomic():
        job = job_type._default_manager.select_for_update().get(pk=pk)
        if job.status != JobStatus.RUNNING:
            return job
        for name, value in fields.items():
            setattr(job, name, value)
        job.finished_at = timezone.now()
        job.save()
    return job
