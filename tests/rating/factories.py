"""Small rate decks for tests, built straight in the database (not through the import service:
these are plain rows, so a test of rating does not depend on the deck import), deck CSVs for the
import tests, and the reference rating the engine is checked against."""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import factory
from django.db import connection

from apps.bundles.models import BundlePeriod
from apps.cdrs.models import Cdr, PendingCdr
from apps.cdrs.services import LOAD_COLUMNS
from apps.rating.imports import COLUMNS
from apps.rating.models import BlockedPrefix, DestinationClass, Rate, RateDeck

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


# --- Calls, and an independent reference of what rating must decide -------------------------
#
# The reference below is deliberately naive (every prefix scanned, exact fractions, one
# rounding): it shares no code with apps.rating.engine, so a test comparing the two checks
# the engine against the rules of issue 5 rather than against itself.

NEVER_PRICED_CLASSES = frozenset({"premium", "special_service", "emergency"})
TEST_NODE = "edge-t"


@dataclass(frozen=True)
class RefRate:
    prefix: str
    country: str
    destination_class: str
    price_per_minute: Decimal
    connection_fee: Decimal
    first_increment: int
    next_increment: int


@dataclass(frozen=True)
class RefDeck:
    currency: str
    effective_from: datetime
    rates: tuple[RefRate, ...]


@dataclass
class RefPeriod:
    """A bundle period as the reference sees it; `used` grows as the reference rates calls."""

    profile_id: int
    start: datetime
    end: datetime
    included: int
    used: int
    suspended: bool = False
    pk: int | None = None


@dataclass(frozen=True)
class Call:
    """One CDR to create: what rating reads of it."""

    edge_id: int
    profile_id: int
    company_id: int
    currency: str
    callee: str
    started_at: datetime
    billable: int
    direction: str = "outbound"
    answered: bool = True


@dataclass(frozen=True)
class Outcome:
    status: str
    cost: Decimal = Decimal(0)
    bundle_minutes: int = 0
    bundle_seconds: int = 0
    prefix: str = ""


def reference_cost(rate: RefRate, seconds: int) -> Decimal:
    """Connection fee + price per minute × billed seconds / 60, billed = the first increment,
    then the rest rounded up to whole next increments; exact, rounded half-up to 4 places once."""
    if seconds <= 0:
        return Decimal(0)
    billed = rate.first_increment
    if seconds > billed:
        increments = math.ceil(Fraction(seconds - billed, rate.next_increment))
        billed += increments * rate.next_increment
    exact = Fraction(rate.connection_fee) + Fraction(rate.price_per_minute) * billed / 60
    return Decimal(math.floor(exact * 10_000 + Fraction(1, 2))) / Decimal(10_000)


def _reference_rate_for(decks: Iterable[RefDeck], call: Call) -> RefRate | None:
    in_force = [d for d in decks if d.currency == call.currency and d.effective_from <= call.started_at]
    if not in_force:
        return None
    deck = max(in_force, key=lambda d: d.effective_from)
    digits = call.callee.removeprefix("+")
    best: RefRate | None = None
    for rate in deck.rates:
        if digits.startswith(rate.prefix) and (best is None or len(rate.prefix) > len(best.prefix)):
            best = rate
    return best


def blocked_ranges() -> list[tuple[str, bool]]:
    """The staff's blocked E.164 ranges, as (digits, whole number only)."""
    rows = BlockedPrefix.objects.filter(prefix__startswith="+").values_list("prefix", "exact")
    return [(prefix.removeprefix("+"), exact) for prefix, exact in rows]


def reference_rating(
    calls: Iterable[Call],
    *,
    decks: Iterable[RefDeck],
    periods: Iterable[RefPeriod],
    blocked: Iterable[tuple[str, bool]],
) -> dict[int, Outcome]:
    """{edge id: what rating must decide}, for `calls` in CDR id order. Adds the bundle
    minutes it uses to `periods`."""
    decks, periods, blocked = list(decks), list(periods), list(blocked)
    outcomes: dict[int, Outcome] = {}
    for call in calls:
        digits = call.callee.removeprefix("+")
        if call.direction != "outbound" or not call.answered or call.billable == 0:
            outcomes[call.edge_id] = Outcome("zero_rated")
            continue
        if any(digits == prefix if exact else digits.startswith(prefix) for prefix, exact in blocked):
            outcomes[call.edge_id] = Outcome("blocked")
            continue
        rate = _reference_rate_for(decks, call)
        if rate is None:
            outcomes[call.edge_id] = Outcome("error")
            continue
        if rate.destination_class in NEVER_PRICED_CLASSES:
            outcomes[call.edge_id] = Outcome("blocked", prefix=rate.prefix)
            continue
        period = next(
            (
                p
                for p in periods
                if p.profile_id == call.profile_id and p.start <= call.started_at < p.end and not p.suspended
            ),
            None,
        )
        left = period.included - period.used if period else 0
        if rate.country == "US" and rate.destination_class in ("landline", "mobile") and period and left > 0:
            minutes = (call.billable + 59) // 60
            used = min(minutes, left)
            period.used += used
            covered = min(call.billable, used * 60)
            rest = call.billable - covered
            status = "rated" if rest else "bundle"
            outcomes[call.edge_id] = Outcome(status, reference_cost(rate, rest), used, covered, rate.prefix)
            continue
        outcomes[call.edge_id] = Outcome("rated", reference_cost(rate, call.billable), prefix=rate.prefix)
    return outcomes


def make_deck(deck: RefDeck) -> RateDeck:
    """The active deck `deck` describes, in the database."""
    made = RateDeck.objects.create(
        currency=deck.currency,
        name=f"{deck.currency} from {deck.effective_from:%Y-%m-%d %H:%M:%S}",
        effective_from=deck.effective_from,
        status=RateDeck.Status.ACTIVE,
        rate_count=len(deck.rates),
    )
    Rate.objects.bulk_create(
        Rate(
            deck=made,
            prefix=r.prefix,
            destination=f"Range {r.prefix}",
            country=r.country,
            destination_class=r.destination_class,
            price_per_minute=r.price_per_minute,
            connection_fee=r.connection_fee,
            first_increment=r.first_increment,
            next_increment=r.next_increment,
        )
        for r in deck.rates
    )
    return made


def make_period(period: RefPeriod, company_id: int) -> BundlePeriod:
    made = BundlePeriod.objects.create(
        sip_profile_id=period.profile_id,
        company_id=company_id,
        period_start=period.start,
        period_end=period.end,
        bundles=1,
        minutes_included=period.included,
        minutes_used=period.used,
        suspended=period.suspended,
    )
    period.pk = made.pk
    return made


def cdr_for(call: Call, *, node: str = TEST_NODE) -> Cdr:
    """An unsaved CDR for `call` that satisfies the CDR table's CHECK constraints."""
    ring = timedelta(seconds=4)
    answered_at = call.started_at + ring if call.answered else None
    ended_at = call.started_at + ring + timedelta(seconds=call.billable + 1 if call.answered else 0)
    outbound = call.direction == "outbound"
    return Cdr(
        node=node,
        edge_id=call.edge_id,
        call_id=f"call-{call.edge_id}@pbx.example",
        sip_profile_id=call.profile_id,
        company_id=call.company_id,
        direction=call.direction,
        caller="+442079460958" if outbound else "+14155550123",
        callee=call.callee,
        started_at=call.started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        duration_seconds=int((ended_at - call.started_at).total_seconds()),
        billable_seconds=call.billable if call.answered else 0,
        sip_code=200 if call.answered else 487,
        disposition="answered" if call.answered else "no_answer",
        auth_method="registration",
        source_address="198.51.100.7",
    )


def queue_calls(calls: Sequence[Call], *, node: str = TEST_NODE) -> list[Cdr]:
    """Create the CDRs of `calls` (ids in list order) and queue them for rating, as an import does."""
    made = Cdr.objects.bulk_create([cdr_for(call, node=node) for call in calls])
    PendingCdr.objects.bulk_create([PendingCdr(cdr_id=cdr.pk) for cdr in made])
    return made


def copy_calls(calls: Sequence[Call], *, node: str = TEST_NODE) -> int:
    """queue_calls for tens of thousands of calls: one COPY (PostgreSQL), then the queue rows."""
    columns = ["public_id", "created_at", *LOAD_COLUMNS]
    now = datetime.now(UTC)
    buffer = io.StringIO()
    for call in calls:
        cdr = cdr_for(call, node=node)
        values = [uuid.uuid4(), now, *(getattr(cdr, column) for column in columns[2:])]
        buffer.write("\t".join("\\N" if v is None else str(v) for v in values) + "\n")
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {Cdr._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute(
            f"INSERT INTO {PendingCdr._meta.db_table} (cdr_id) SELECT id FROM {Cdr._meta.db_table}"  # noqa: S608
            " WHERE node = %s ORDER BY id ON CONFLICT DO NOTHING",
            [node],
        )
        return cursor.rowcount
