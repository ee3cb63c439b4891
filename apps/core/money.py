"""How an amount is written for people, in one place. In core, below every app, so the
tenant app's pages and admin (below billing) write money the same way as billing does;
`apps.billing.money` (the quanta, reading amounts typed in) re-exports it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# The places people are shown: what is bought and paid for is whole cents.
SHOWN_PLACES = 2
# The ledger's own places (AMOUNT_QUANTUM), for statements that show postings exactly.
LEDGER_PLACES = 4


def format_money(amount: Decimal | int, currency: str = "", *, places: int = SHOWN_PLACES) -> str:
    """An amount as people read it: "1,234.50 EUR" (rounded half up, as the ledger rounds,
    thousands grouped; never "-0.00"). Without a currency, the number alone: "1,234.50"."""
    rounded = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if not rounded:
        rounded = abs(rounded)  # -0.001 is shown as 0.00, not -0.00
    text = f"{rounded:,.{places}f}"
    return f"{text} {currency}" if currency else text
