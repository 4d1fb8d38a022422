"""Text hygiene shared by every importer."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` (decoded JSON) with every NUL character in its strings, keys included, replaced by
    U+FFFD: PostgreSQL text cannot hold NUL, and one odd character must not cost a whole record."""
    if isinstance(value, str):
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value
