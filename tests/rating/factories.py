"""Small rate decks for tests, built straight in the database, and deck CSVs for imports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

import factory

from apps.rating.imports import COLUMNS
from apps.rating.models import DestinationClass, Rate, RateDeck

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


class RateDeckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RateDeck

    currency = "GBP"
    name = factory.Sequence(lambda n: f"Deck {n}")
    effective_from = JAN_1
    status = RateDeck.Status.ACTIVE


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rate

    deck = factory.SubFactory(RateDeckFactory)
    prefix = "44"
    destination = "United Kingdom"
    country = "GB"
    destination_class = DestinationClass.LANDLINE
    price_per_minute = Decimal("0.010000")
    connection_fee = Decimal("0.000000")
    first_increment = 60
    next_increment = 60


# (prefix, destination, country, class, price per minute)
SMALL_DECK = [
    ("1", "North America", "US", "landline", "0.005000"),
    ("1212", "United States, New York", "US", "landline", "0.004000"),
    ("44", "United Kingdom", "GB", "landline", "0.010000"),
    ("4420", "United Kingdom, London", "GB", "landline", "0.008000"),
    ("447", "United Kingdom mobile", "GB", "mobile", "0.050000"),
    ("4474", "United Kingdom mobile, Vodafone", "GB", "mobile", "0.045000"),
    ("44800", "United Kingdom toll-free", "GB", "toll_free", "0.000000"),
    ("49", "Germany", "DE", "landline", "0.012000"),
    ("4915", "Germany mobile", "DE", "mobile", "0.060000"),
]


def small_deck(
    *,
    currency: str = "GBP",
    effective_from: datetime = JAN_1,
    rows: Iterable[tuple[str, str, str, str, str]] = SMALL_DECK,
    markup: Decimal = Decimal(0),
    **deck_fields: object,
) -> RateDeck:
    """An active deck whose prices are SMALL_DECK's plus `markup` (to tell versions apart)."""
    deck = RateDeckFactory(currency=currency, effective_from=effective_from, **deck_fields)
    rates = [
        RateFactory.build(
            deck=deck,
            prefix=prefix,
            destination=destination,
            country=country,
            destination_class=destination_class,
            price_per_minute=Decimal(price) + markup,
        )
        for prefix, destination, country, destination_class, price in rows
    ]
    Rate.objects.bulk_create(rates)
    deck.rate_count = len(rates)
    deck.save(update_fields=["rate_count"])
    return deck


def csv_row(
    prefix: str,
    destination: str = "Somewhere",
    country: str = "",
    destination_class: str = "landline",
    price: str = "0.010000",
    fee: str = "0",
    first: str = "60",
    next_: str = "60",
    effective: str = "2026-01-01",
) -> str:
    return ",".join([prefix, destination, country, destination_class, price, fee, first, next_, effective])


def deck_csv(*rows: str, header: str = ",".join(COLUMNS)) -> str:
    return "\n".join([header, *rows]) + "\n"


def big_deck_csv(rows: int, *, effective: str = "2026-01-01") -> str:
    """`rows` distinct prefixes under +44 (4410000000…), like a carrier's full deck."""
    lines = [",".join(COLUMNS)]
    for n in range(rows):
        price = f"0.{n % 1000:03d}123"
        lines.append(f"44{10_000_000 + n},United Kingdom range {n},GB,landline,{price},0.001000,1,1,{effective}")
    return "\n".join(lines) + "\n"
