"""What inference backends, the review form and training need of a policy version, as a plain value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moderation.policies.taxonomy import NO_SEVERITY, SEVERITIES


@dataclass(frozen=True)
class PolicySpec:
    """A policy version's rubric without the database row (``PolicyVersion.spec()``)."""

    taxonomy: list[dict[str, Any]]
    safe_label: str
    output_format: str = "kuaimod"  # or "blm"

    def labels(self) -> set[str]:
        return {self.safe_label} | {t["key"] for m in self.taxonomy for t in m.get("tags", [])}

    def scenes(self) -> set[str]:
        return {m["key"] for m in self.taxonomy}

    def severities_for(self, label: str) -> tuple[str, ...]:
        """The severities a verdict with ``label`` may carry: ``none`` for the non-violative label; the
        tag's ``severities`` when it names some, else all of them (in SEVERITIES' order)."""
        if label == self.safe_label:
            return (NO_SEVERITY,)
        for major in self.taxonomy:
            for tag in major.get("tags", []):
                if tag.get("key") == label and tag.get("severities"):
                    return tuple(s for s in SEVERITIES if s in tag["severities"])
        return SEVERITIES

    def violation_types(self) -> dict[str, tuple[str, frozenset[str]]]:
        """BLM-Guard's levels: each violation type's scene and the severities it allows."""
        return {
            t["key"]: (m["key"], frozenset(self.severities_for(t["key"])))
            for m in self.taxonomy
            for t in m.get("tags", [])
        }
