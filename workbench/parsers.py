"""The API's JSON parser."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from workbench.text import json_depth, storable_text

# Deeper than any payload this API takes; every walk over the data after parsing stays far from
# Python's recursion limit (a 600-level list parsed fine but overflowed the code that walked it).
MAX_JSON_DEPTH = 64


def _non_finite_at(value: Any, path: str = "") -> str | None:
    """Where decoded JSON holds a number Python read as infinity (``1e400``: JSON has no bound on a number's size,
    and ``float`` overflows to ``inf``), as ``params.max_steps`` / ``events[2].weight`` ("the body" for the whole);
    None when it holds none. The depth is bounded before this walks it."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "the body")
    if isinstance(value, list):
        return next((at for i, v in enumerate(value) if (at := _non_finite_at(v, f"{path}[{i}]")) is not None), None)
    if isinstance(value, dict):
        items = value.items()
        return next(
            (at for k, v in items if (at := _non_finite_at(v, f"{path}.{k}" if path else str(k))) is not None), None
        )
    return None


class StorableJSONParser(JSONParser):
    """DRF's JSON parser, and: JSON nested deeper than ``MAX_JSON_DEPTH`` is a 400 (not a
    RecursionError), a number too large for a float (``1e400``, read as infinity) is a 400 (it was a 500 wherever an
    id was expected: ``int(inf)`` overflows; elsewhere stored as the text "inf"), and text PostgreSQL cannot store
    (NUL, lone surrogates) becomes U+FFFD. DRF's own check refuses only the literals ``NaN`` and ``Infinity``."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        if json_depth(data, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep.")
        at = _non_finite_at(data)
        if at is not None:
            raise ParseError(
                f"JSON parse error - {str(at)[:100]} is a number too large to read (1e400 is infinity): send a "
                "finite one."
            )
        return storable_text(data)
