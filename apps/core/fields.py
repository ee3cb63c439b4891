"""Serializer fields for request bodies that take exactly what the schema says.

DRF's `CharField` reads a JSON number as its text (`{"name": 0}` becomes "0"), so a body the
OpenAPI schema calls invalid (a number where a string is documented) was accepted. Every text
field of the API is a `TextField`: a string or a 400 naming the field. Amounts are not text:
`apps.billing.money.AmountField` has its own rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rest_framework import serializers


class TextField(serializers.CharField):
    default_error_messages = {"invalid": "Send a string (in quotes), not a number, list or object."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


def iso_datetime(value: datetime | None) -> str | None:
    """A datetime as the API writes it, ISO 8601 in UTC with `Z` (what DRF's DateTimeField
    writes under TIME_ZONE = "UTC"), without DRF's per-value time-zone look-up: every
    datetime read from the database is already in UTC (the connection's time zone)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"


class UtcDateTimeField(serializers.DateTimeField):
    """DateTimeField in the schema; written by iso_datetime (no time-zone look-up per value)."""

    def to_representation(self, value: Any) -> str:
        return iso_datetime(value)  # type: ignore[return-value]  # DRF skips the field when the value is None


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal read from a column of fixed scale as DRF's DecimalField writes it ("12.3400"):
    the column already holds the field's decimal places, so there is nothing to quantize."""
    return None if value is None else f"{value:f}"
