"""``{% load policy_history %}{% policy_history policy as events %}``: what the audit log says was done to a policy's
versions (drafts saved, publishes, re-activations), for the policy page's history, so the policies wing need not read
the review wing's log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django import template

from moderation.review.selectors import audit_events_for_policy

register = template.Library()

FIELD_WORDS = {
    "taxonomy": "taxonomy",
    "safe_label": "non-violative label",
    "output_format": "output format",
    "notes": "notes",
}


@dataclass
class PolicyHistoryRow:
    at: datetime
    who: str
    action: str
    what: str
    changes: list[str] = field(default_factory=list)
    more: int = 0  # changes the log counted but did not list


def _row(event: Any) -> PolicyHistoryRow:
    p = event.payload or {}
    number, started, replaced = p.get("number"), p.get("started_from"), p.get("replaced")
    row = PolicyHistoryRow(at=event.at, who=event.actor_name or "system", action=event.action, what="")
    if event.action == "policy.draft_save":
        fields = [FIELD_WORDS.get(f, f) for f in p.get("fields", [])]
        row.what = f"Saved draft v{number}" + (f" from v{started}" if started else "")
        row.what += f": changed {', '.join(fields)}" if fields else ": no field changed"
        row.changes = list(p.get("changes", []))
        row.more = max(0, int(p.get("change_count", 0)) - len(row.changes))
    elif event.action == "policy.publish":
        row.what = f"Published v{number}" + (f", replacing v{replaced}" if replaced else "")
        if p.get("replaced_changes_confirmed"):
            row.what += f" (confirmed replacing {p.get('replaced_changes', 0)} change(s) it was not started from)"
        if p.get("reason"):
            row.what += f". Reason: {p['reason']}"
        if p.get("notes"):  # a note written on the publish step (the draft was saved without one)
            row.what += f". Change note: {p['notes']}"
    else:
        row.what = f"Made v{number} active again" + (f", replacing v{replaced}" if replaced else "")
    return row


@register.simple_tag
def policy_history(policy: Any) -> list[PolicyHistoryRow]:
    return [_row(event) for event in audit_events_for_policy(policy_id=policy.pk)]
