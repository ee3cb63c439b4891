"""Serializer fields for request bodies that take exactly what the schema says.

DRF's `CharField` reads a JSON number as its text (`{"name": 0}` becomes "0"), so a body the
OpenAPI schema calls invalid (a number where a string is documented) was accepted. Every text
field of the API is a `TextField`: a string or a 400 naming the field. Amounts are not text:
`apps.billing.money.AmountField` has its own rules.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class TextField(serializers.CharField):
    default_error_messages = {"invalid": "Send a string (in quotes), not a number, list or object."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]
