"""Money in one place: its quanta, how an amount is written for people (`format_money`, which
lives in apps.core.money so that every layer can use it), and how an amount typed in (a form,
the API, the admin) is read."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from apps.core.exceptions import ApplicationError
from apps.core.money import format_money

__all__ = ["AMOUNT_QUANTUM", "CENTS", "clean_amount", "format_money"]

# Balances, charges and call costs are kept to 4 decimal places (ARCHITECTURE.md, Money).
AMOUNT_QUANTUM = Decimal("0.0001")
# What is bought and paid for: Stripe charges whole cents, and settings are whole cents too.
CENTS = Decimal("0.01")


def clean_amount(
    value: Any, *, field: str = "amount", quantum: Decimal = AMOUNT_QUANTUM, allow_zero: bool = False
) -> Decimal:
    """An amount typed in ("25", "25.50"): a finite number, more than zero (or zero too, with
    `allow_zero`), with no more decimal places than `quantum` has. What is wrong is a field
    error of `field`. Returns the amount as written; quantize it where the places are kept."""
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ApplicationError("Enter an amount such as 25 or 25.50.", field=field) from None
    if not amount.is_finite():
        raise ApplicationError("Enter an amount such as 25 or 25.50.", field=field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ApplicationError(
            "The amount cannot be negative." if allow_zero else "The amount must be more than zero.", field=field
        )
    try:
        exact = amount == amount.quantize(quantum)
    except InvalidOperation:  # more digits than a Decimal holds: no amount of ours
        raise ApplicationError("Enter an amount such as 25 or 25.50.", field=field) from None
    if not exact:
        places = -int(quantum.as_tuple().exponent)
        raise ApplicationError(f"Use at most {places} decimal places.", field=field)
    return amount
