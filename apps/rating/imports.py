"""Reading and checking a rate deck CSV. Pure functions, no writes: `apps.rating.services`
runs the import with them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache

import phonenumbers
from django_countries import countries

from apps.core.csvfiles import Row
from apps.core.exceptions import ApplicationError
from apps.rating.models import DestinationClass

COLUMNS = (
    "prefix",
    "destination",
    "country",
    "class",
    "price_per_minute",
    "connection_fee",
    "first_increment",
    "next_increment",
    "effective_date",
)
CLASSES = frozenset(DestinationClass.values)
PLACES = Decimal("0.000001")  # DecimalField(max_digits=12, decimal_places=6)
MAX_PRICE = Decimal("999999.999999")
MAX_INCREMENT = 3600
MAX_DESTINATION = 100
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ROWS = 500_000
TEMPLATE = (
    ",".join(COLUMNS)
    + "\n44,United Kingdom,GB,landline,0.010000,0,60,60,2026-01-01"
    + "\n447,United Kingdom mobile,GB,mobile,0.050000,0.010000,1,1,2026-01-01\n"
)


@dataclass(frozen=True, slots=True)
class RateValues:
    """One deck row, checked."""

    prefix: str
    destination: str
    country: str
    destination_class: str
    price_per_minute: Decimal
    connection_fee: Decimal
    first_increment: int
    next_increment: int
    effective_from: datetime


@cache
def _calling_code(country: str) -> str | None:
    """The country's calling code ("44" for GB), or None if it is not a country we know."""
    if country not in countries or country not in phonenumbers.SUPPORTED_REGIONS:
        return None
    return str(phonenumbers.country_code_for_region(country))


@cache
def _effective(text: str) -> datetime:
    # A date means midnight UTC; a date and time must say its offset. Cached: every row
    # of a deck usually carries the same date.
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"“{text}” is not a date (YYYY-MM-DD)") from None
    if moment.tzinfo is None:
        raise ValueError(f"“{text}” has no time zone offset (add Z or +00:00)")
    return moment.astimezone(UTC)


def _price(text: str, column: str) -> Decimal:
    if not text:
        raise ValueError(f"{column} is required")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{column}: “{text}” is not a number") from None
    if not price.is_finite():
        raise ValueError(f"{column}: “{text}” is not a number")
    if price < 0:
        raise ValueError(f"{column} cannot be negative")
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        raise ValueError(f"{column} has more than 6 decimal places")
    if price > MAX_PRICE:
        raise ValueError(f"{column} is more than {MAX_PRICE:,}")
    return price.quantize(PLACES)


def _increment(text: str, column: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_INCREMENT:
        raise ValueError(f"{column}: “{text}” is not a whole number of seconds from 1 to {MAX_INCREMENT}")
    return int(text)


def clean_row(row: Row) -> RateValues:
    """Check one CSV row. Raises ApplicationError whose message names every problem."""
    if "__width__" in row.values:
        raise ApplicationError(f"The row has {row.values['__width__']} fields; expected {len(COLUMNS)}.")
    values = {key: value.strip() for key, value in row.values.items()}
    problems: list[str] = []

    prefix = values["prefix"].removeprefix("+").replace(" ", "")
    if not (prefix.isdigit() and prefix.isascii() and 1 <= len(prefix) <= 15):
        problems.append(f"prefix: “{values['prefix']}” is not 1 to 15 digits")
    destination = values["destination"]
    if not destination:
        problems.append("destination is required")
    elif len(destination) > MAX_DESTINATION:
        problems.append(f"destination has more than {MAX_DESTINATION} characters")
    country = values["country"].upper()
    if country:
        code = _calling_code(country)
        if code is None:
            problems.append(f"country: “{values['country']}” is not a country code such as GB")
        elif prefix.isdigit() and not prefix.startswith(code):
            problems.append(f"prefix: +{prefix} is not in {country} (its numbers start with +{code})")
    destination_class = values["class"].lower().replace("-", "_").replace(" ", "_")
    if destination_class not in CLASSES:
        problems.append(f"class: “{values['class']}” is not one of {', '.join(DestinationClass.values)}")

    prices: dict[str, Decimal] = {}
    for column in ("price_per_minute", "connection_fee"):
        try:
            prices[column] = _price(values[column], column)
        except ValueError as error:
            problems.append(str(error))
    increments: dict[str, int] = {}
    for column in ("first_increment", "next_increment"):
        try:
            increments[column] = _increment(values[column], column)
        except ValueError as error:
            problems.append(str(error))
    effective: datetime | None = None
    try:
        effective = _effective(values["effective_date"])
    except ValueError as error:
        problems.append(f"effective_date: {error}")

    if problems or effective is None:
        raise ApplicationError("; ".join(problems) + ".")
    return RateValues(
        prefix=prefix,
        destination=destination,
        country=country,
        destination_class=destination_class,
        price_per_minute=prices["price_per_minute"],
        connection_fee=prices["connection_fee"],
        first_increment=increments["first_increment"],
        next_increment=increments["next_increment"],
        effective_from=effective,
    )
