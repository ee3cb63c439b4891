"""A price before every payment: what a priced action (a new profile's channels, more channels,
bundles, a number) will take from the company balance, shown before the customer confirms.

Each product writes one quote function per priced action, next to the service that charges,
computing the amount with the very helper the charge uses, so the quote is the charge. The page
shows the quote in a confirmation step (apps.billing.pages) and the API answers it for `?quote=1`
on the action's own endpoint, without buying.

A quote's `fingerprint` names what the price is made of (the unit prices, quantities, currency
and, in the labels of a prorated price, the period's end), not the prorated amount itself:
that shrinks by a fraction of a cent each minute as the period runs out, which is not a change
of price. A confirmation sent with a fingerprint that no longer matches is refused, showing the
new price (PriceChanged).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from apps.billing.ledger.selectors import company_balance
from apps.billing.money import CENTS
from apps.billing.pricing import ProratedPrice
from apps.companies.models import Company
from apps.core.exceptions import Conflict
from apps.core.fields import TextField
from apps.core.money import format_money

QUOTE_PARAM = "quote"


@dataclass(frozen=True)
class Quote:
    """What an action will cost, from which balance, and the balance after it."""

    company: Company
    amount: Decimal  # to 4 places, as the charge records it
    description: str
    period_end: datetime | None
    # What the price is made of: [(label, quantity, unit price)], for the fingerprint. A prorated
    # price names its period's end in its label; a number's term starts when it is bought.
    basis: tuple[tuple[str, int, Decimal], ...] = field(default=())
    balance_now: Decimal = Decimal("0")

    @property
    def currency(self) -> str:
        return self.company.currency

    @property
    def shown(self) -> Decimal:
        """The amount as the customer reads it: to the cent."""
        return self.amount.quantize(CENTS, rounding=ROUND_HALF_UP)

    @property
    def balance_after(self) -> Decimal:
        return self.balance_now - self.amount

    @property
    def covered(self) -> bool:
        return self.balance_after >= 0

    @property
    def fingerprint(self) -> str:
        basis = [[label, quantity, str(unit)] for label, quantity, unit in self.basis]
        canonical = json.dumps([self.currency, basis], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, object]:
        return {
            "amount": self.shown,
            "currency": self.currency,
            "balance_now": self.balance_now.quantize(CENTS, rounding=ROUND_HALF_UP),
            "balance_after": self.balance_after.quantize(CENTS, rounding=ROUND_HALF_UP),
            "period_end": self.period_end,
            "description": self.description,
            "fingerprint": self.fingerprint,
        }


def quote_make(
    *,
    company: Company,
    amount: Decimal,
    description: str,
    period_end: datetime | None,
    basis: tuple[tuple[str, int, Decimal], ...] = (),
) -> Quote:
    return Quote(
        company=company,
        amount=amount,
        description=description,
        period_end=period_end,
        basis=basis,
        balance_now=company_balance(company),
    )


def quote_for_price(*, company: Company, price: ProratedPrice, basis: str, description: str) -> Quote:
    """The quote of a prorated price: `basis` names the item in the fingerprint ("channel",
    "us_bundle"), with the period's end, the count and the unit price."""
    return quote_make(
        company=company,
        amount=price.amount,
        description=description,
        period_end=price.period_end,
        basis=((f"{basis}:{price.period_end:%Y-%m-%d}", price.count, price.unit_price),),
    )


def quote_sum(company: Company, *parts: Quote, description: str) -> Quote:
    """One quote for an action that makes several charges (a profile's channels and its bundles)."""
    ends = [part.period_end for part in parts if part.period_end is not None]
    return quote_make(
        company=company,
        amount=sum((part.amount for part in parts), Decimal("0")),
        description=description,
        period_end=max(ends) if ends else None,
        basis=tuple(item for part in parts for item in part.basis),
    )


class PriceChanged(Conflict):
    default_code = "price_changed"


def quote_check(quote: Quote, fingerprint: str | None) -> None:
    """Refuse a confirmation whose price is not the one shown (the price list, the period or the
    counts changed in between)."""
    if fingerprint != quote.fingerprint:
        raise PriceChanged(
            f"The price changed since it was shown: it is now {format_money(quote.shown, quote.currency)}. "
            "Nothing was charged; check the new price and confirm again.",
            field="confirm",
        )


# --- The API: `?quote=1` on the action's own endpoint ---------------------------------


_YES = {"1", "true", "yes"}
_NO = {"0", "false", "no"}


def wants_quote(request: Request) -> bool:
    """`quote=1` (or true, yes) asks for a quote; left out (or 0, false, no) the request acts.
    Anything else is a 400: a client that meant to ask for a price is never charged instead."""
    given = {value.strip().lower() for value in request.query_params.getlist(QUOTE_PARAM)}
    if not given or given <= _NO:
        return False
    if given <= _YES:
        return True
    raise ValidationError({QUOTE_PARAM: ["Use quote=1 (or true) for a quote without buying, or leave it out."]})


QUOTE_PARAMETER = OpenApiParameter(
    QUOTE_PARAM,
    OpenApiTypes.BOOL,
    location=OpenApiParameter.QUERY,
    required=False,
    description=(
        "`quote=1`: check the request and answer what it would cost (a Quote, 200) without doing it. Nothing "
        "is bought or charged. The same request without `quote` then charges that amount (a prorated price "
        "only shrinks as the period runs out, by less than a cent a minute)."
    ),
)


class QuoteSerializer(serializers.Serializer):  # type: ignore[type-arg]
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="What the request will charge to the company balance."
    )
    currency = TextField()
    balance_now = serializers.DecimalField(max_digits=16, decimal_places=2, help_text="The company balance now.")
    balance_after = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text="The company balance after the charge. Below zero, the charge stays unpaid (7 days' grace).",
    )
    period_end = serializers.DateTimeField(allow_null=True, help_text="The end of the period paid for.")
    description = TextField(help_text="What is charged, as the statement will say it.")
    fingerprint = TextField(help_text="Names the price (unit prices, counts, period).")

    class Meta:
        ref_name = "Quote"


def or_quote(serializer: type[serializers.Serializer], *, name: str) -> PolymorphicProxySerializer:  # type: ignore[type-arg]
    """The schema of a 200 that is the action's answer, or a Quote with `?quote=1`."""
    return PolymorphicProxySerializer(
        component_name=name, serializers=[serializer, QuoteSerializer], resource_type_field_name=None
    )
