"""Money in one place: its quanta, how an amount is written for people (`format_money`, which
lives in apps.core.money so that every layer can use it), and how an amount typed in (a form,
the API, the admin) is read."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from apps.core.exceptions import ApplicationError
from apps.core.money import format_money

__all__ = ["AMOUNT_QUANTUM", "CENTS", "AmountField", "amount_field", "amount_maximum", "clean_amount", "format_money"]

# Balances, charges and call costs are kept to 4 decimal places (ARCHITECTURE.md, Money).
AMOUNT_QUANTUM = Decimal("0.0001")
# What is bought and paid for: Stripe charges whole cents, and settings are whole cents too.
CENTS = Decimal("0.01")


# What every amount column holds: DecimalField(max_digits=14, decimal_places=4) (balances and
# ledger entries have 16 digits), so at most 10 digits before the point. An amount typed in
# is bounded by this, and says so, instead of overflowing the column (a 500).
AMOUNT_INTEGER_DIGITS = 10

# ASCII digits only: Decimal() also reads other scripts' digits ("١٠" is 10) and exponents
# ("1e3"), neither of which is how an amount is written.
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
_NOT_NUMBERS = {"nan", "snan", "inf", "infinity"}

AMOUNT_EXAMPLE = "Enter an amount such as 25 or 25.50."


def amount_maximum(quantum: Decimal = AMOUNT_QUANTUM) -> Decimal:
    """The largest amount an amount column holds, in steps of `quantum`."""
    return Decimal(10) ** AMOUNT_INTEGER_DIGITS - quantum


def _places(quantum: Decimal) -> int:
    return -int(quantum.as_tuple().exponent)


def _read(value: Any, field: str) -> Decimal:
    if isinstance(value, Decimal):  # from our own code or a form's DecimalField
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    text = str(value).strip()
    if text.lstrip("+-").lower() in _NOT_NUMBERS:
        raise ApplicationError(f"“{text}” is not a number. {AMOUNT_EXAMPLE}", field=field)
    if not _AMOUNT.fullmatch(text):
        if any(ch.isdigit() and not ch.isascii() for ch in text):
            raise ApplicationError(f"{AMOUNT_EXAMPLE[:-1]}, written with the digits 0-9.", field=field)
        raise ApplicationError(AMOUNT_EXAMPLE, field=field)
    return Decimal(text)


def clean_amount(
    value: Any, *, field: str = "amount", quantum: Decimal = AMOUNT_QUANTUM, allow_zero: bool = False
) -> Decimal:
    """An amount typed in ("25", "25.50"): ASCII digits with at most one ".", more than zero
    (or zero too, with `allow_zero`), with no more decimal places than `quantum` has, and no
    more than an amount column holds (`amount_maximum`). What is wrong is a field error of
    `field`. Returns the amount as written; quantize it where the places are kept."""
    amount = _read(value, field)
    if not amount.is_finite():
        raise ApplicationError(f"“{amount}” is not a number. {AMOUNT_EXAMPLE}", field=field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ApplicationError(
            "The amount cannot be negative." if allow_zero else "The amount must be more than zero.", field=field
        )
    maximum = amount_maximum(quantum)
    if amount > maximum:
        raise ApplicationError(f"The amount must be at most {maximum:,}.", field=field, code="above_maximum")
    if amount != amount.quantize(quantum):
        raise ApplicationError(f"Use at most {_places(quantum)} decimal places.", field=field)
    return amount


class AmountField(serializers.CharField):
    """An amount in a request: a string (a JSON number is read as its text), checked by
    `clean_amount` in the service that takes it, so the API, the pages and the admin refuse
    the same things with the same messages. Its help text and the schema state the format
    and the bound."""

    def __init__(self, *, quantum: Decimal = CENTS, help_text: str = "An amount.", **kwargs: Any) -> None:
        self.quantum = quantum
        bound = f"ASCII digits, at most {_places(quantum)} decimal places, at most {amount_maximum(quantum):,}."
        super().__init__(max_length=24, help_text=f"{help_text} {bound}", **kwargs)


def amount_field(*, quantum: Decimal = CENTS, **kwargs: Any) -> AmountField:
    return AmountField(quantum=quantum, **kwargs)


class AmountFieldSchema(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    target_class = AmountField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        places = _places(self.target.quantum)
        return {
            "type": "string",
            "pattern": rf"^[0-9]+(\.[0-9]{{1,{places}}})?$",
            "maxLength": 24,
            "example": "25.50",
        }
