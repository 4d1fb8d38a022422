"""The API's JSON parser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from workbench.text import storable_text


class StorableJSONParser(JSONParser):
    """DRF's JSON parser, and: JSON nested deeper than the decoder can follow is a 400 (not a
    RecursionError), and text PostgreSQL cannot store (NUL, lone surrogates) becomes U+FFFD."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        return storable_text(data)
