"""The API's request parsers: DRF's, with the checks every body gets before any view sees it.

- JSON nested deeper than MAX_DEPTH levels is refused (Python's decoder would otherwise raise
  RecursionError, a 500, somewhere past about a thousand levels);
- a NUL character in any text, key or value, is refused naming the field (PostgreSQL cannot
  store one, and a view that passes it on would fail with a 500).
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from rest_framework import exceptions, parsers

MAX_DEPTH = 32

NUL_MESSAGE = "Remove the NUL character (\\u0000): text cannot hold it."


def _refuse_nul(name: str) -> None:
    raise exceptions.ValidationError({name or "non_field_errors": [NUL_MESSAGE]})


def check_parsed(data: Any) -> None:
    """Walk the parsed body without recursion: too deep is a parse error, a NUL a field error
    (the field's dotted path, e.g. `allowed_ips.0.address`)."""
    stack: list[tuple[str, Any, int]] = [("", data, 1)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise exceptions.ParseError(f"JSON nested more than {MAX_DEPTH} levels deep is not accepted.")
        if isinstance(value, str):
            if "\x00" in value:
                _refuse_nul(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                key_text = str(key)
                child = f"{path}.{key_text}" if path else key_text
                if "\x00" in key_text:
                    _refuse_nul(path)
                stack.append((child, item, depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((f"{path}.{index}" if path else str(index), item, depth + 1))


def check_query_dict(data: QueryDict, *, what: str = "") -> None:
    for key, values in data.lists():
        if "\x00" in key or any("\x00" in str(v) for v in values):
            _refuse_nul(key.replace("\x00", "") or what)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON nested more than {MAX_DEPTH} levels deep is not accepted.") from None
        check_parsed(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        check_query_dict(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        check_query_dict(parsed.data)
        return parsed
