"""The Calls CSV (the page's download and the API's `?format=csv`): streamed row by row from a
server-side cursor, so a month of calls is never in memory."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from apps.cdrs.selectors import calls_in_chunks

CSV_COLUMNS = (
    "id",
    "started_at",
    "answered_at",
    "profile",
    "profile_id",
    "direction",
    "caller",
    "callee",
    "destination",
    "duration_seconds",
    "billable_seconds",
    "disposition",
    "refusal_reason",
    "paid_by",
    "rate_per_minute",
    "bundle_minutes",
    "cost",
    "currency",
    "note",
)

# A cell a spreadsheet would run as a formula; E.164 numbers (+14155550123) are left alone.
_FORMULA = re.compile(r"^(?:[=@\t\r]|[+-](?![0-9]+$))")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if _FORMULA.match(text) else text


def _line(row: dict[str, Any]) -> list[str]:
    named = {**row, "id": row["public_id"], "profile": row["profile_name"]}
    return [_cell(named[column]) for column in CSV_COLUMNS]


class _Echo:
    def write(self, value: str) -> str:
        return value


def calls_csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow(_line(row))


def calls_csv_response(queryset: QuerySet[Any], *, currency: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        calls_csv(calls_in_chunks(queryset, currency=currency)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
