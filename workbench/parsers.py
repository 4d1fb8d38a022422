"""The API's JSON parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from workbench.text import json_depth, storable_text

# Deeper than any payload this API takes; every walk over the data after parsing stays far from
# Python's recursion limit (a 600-level list parsed fine but overflowed the code that walked it).
MAX_JSON_DEPTH = 64


class StorableJSONParser(JSONParser):
    """DRF's JSON parser, and: JSON nested deeper than ``MAX_JSON_DEPTH`` is a 400 (not a
    RecursionError), and text PostgreSQL cannot store (NUL, lone surrogates) becomes U+FFFD."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        if json_depth(data, limit=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep.")
        return storable_text(data)
