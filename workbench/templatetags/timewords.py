"""``{% load timewords %}``: ``{{ when|expires_in }}`` ("in 30 days", "in a year"), ``{{ when|elapsed }}`` ("under
a minute", "5 minutes"), ``{{ when|ago }}`` ("just now", "5 minutes ago"): ``workbench.timewords`` in templates."""

from __future__ import annotations

from datetime import datetime

from django import template

from workbench.timewords import ago_text, elapsed_text, expires_in_text

register = template.Library()


@register.filter
def expires_in(when: datetime | None) -> str:
    return expires_in_text(when) if when else ""


@register.filter
def elapsed(since: datetime | None) -> str:
    return elapsed_text(since) if since else ""


@register.filter
def ago(when: datetime | None) -> str:
    return ago_text(when) if when else ""
