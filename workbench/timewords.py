"""Relative times in words, said one way across the app (``{% load timewords %}`` in templates): a distance people
read at a glance, never Django's two-unit ``timesince``/``timeuntil`` read off a clock ("11 months, 4 weeks" for a
year; "0 minutes" for a run that started a second ago)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

# Up to this many days ahead an expiry is said in days ("in 30 days", "in 90 days"): close enough to plan by.
EXPIRY_DAYS_SAID_EXACTLY = 90


def _aware(when: datetime) -> datetime:
    """``when`` with a time zone: a naive one (a value built by hand, not read from the database) is taken as the
    current time zone's, as Django's own forms take it; it was a TypeError against the aware now (a 500)."""
    return timezone.make_aware(when) if timezone.is_naive(when) else when


def _ahead(when: datetime, now: datetime) -> str:
    """A time that should be past but is a minute or more ahead (one machine's clock ahead of another's: a worker
    stamps a start, the web says how long ago): said as ahead, "in 5 days", not "just now" or "under a minute"."""
    return f"in {timeuntil(when, now)}"


def expires_in_text(expires_at: datetime, *, now: datetime | None = None) -> str:
    """When ``expires_at`` comes, as whole calendar days from today (local time), the same on every render that day:
    "today", "tomorrow", "in N days" up to ``EXPIRY_DAYS_SAID_EXACTLY``; further off, a plain approximation: "in
    about 5 months", "in a year", "in about 2 years"."""
    days = (timezone.localdate(_aware(expires_at)) - timezone.localdate(_aware(now or timezone.now()))).days
    if days <= 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days <= EXPIRY_DAYS_SAID_EXACTLY:
        return f"in {days} days"
    months = round(days / 30.44)
    if months == 12:
        return "in a year"
    if months < 18 or round(days / 365.25) < 2:  # 533-547 days were "in about 1 years"
        return f"in about {months} months"
    return f"in about {round(days / 365.25)} years"


def elapsed_text(since: datetime, *, now: datetime | None = None) -> str:
    """How long since ``since``: "under a minute", then ``timesince``'s "3 minutes", "1 hour, 5 minutes"."""
    since, now = _aware(since), _aware(now or timezone.now())
    if (since - now).total_seconds() >= 60:
        return _ahead(since, now)
    if (now - since).total_seconds() < 60:
        return "under a minute"
    return timesince(since, now)


def ago_text(when: datetime, *, now: datetime | None = None) -> str:
    """When ``when`` was, from now: "just now" under a minute ("0 minutes ago" read as a glitch), else "3 minutes
    ago"."""
    when, now = _aware(when), _aware(now or timezone.now())
    if (when - now).total_seconds() >= 60:
        return _ahead(when, now)
    if (now - when).total_seconds() < 60:
        return "just now"
    return f"{timesince(when, now)} ago"
