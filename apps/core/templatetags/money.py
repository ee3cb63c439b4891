"""Money on pages: `{% load money %}{{ balance|money:currency }}` ("1,234.50 GBP"),
`{{ balance|money }}` ("1,234.50"), `{{ call.cost|ledger_money }}` (the ledger's 4 places).
Balances and amounts (statements and credit histories too) are shown to 2 places; 4 only where
one call's cost would otherwise read 0.00.
Each calls apps.core.money.format_money, so a page writes an amount as messages, e-mails,
receipts and the admin do."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from apps.core.money import LEDGER_PLACES, format_money

register = template.Library()


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


@register.filter
def money(value: Any, currency: Any = "") -> str:
    """The amount to 2 places with its currency, if given; "" for no amount (as floatformat)."""
    amount = _amount(value)
    return "" if amount is None else format_money(amount, str(currency or ""))


@register.filter
def ledger_money(value: Any, currency: Any = "") -> str:
    """The amount to the ledger's 4 places, for one call's cost (a few tenths of a cent)."""
    amount = _amount(value)
    return "" if amount is None else format_money(amount, str(currency or ""), places=LEDGER_PLACES)
