"""The rating engine: queued CDRs become money, exactly once, in batches.

One batch is one database transaction:
1. take the batch lock (a transaction-level advisory lock: batches run one at a time, so
   bundle minutes go to calls in CDR order whichever job runs), then claim up to `limit`
   CDRs from the queue (PendingCdr), oldest first;
2. decide each call (`price_call`): inbound, unanswered and zero-second calls cost nothing;
   blocked destinations are never priced; US landline and mobile calls use the profile's
   bundle minutes first (whole minutes, from the bundle period the call started in); the
   rest is charged at the standard rate of the deck in force when the call started;
3. write one CdrRating per CDR (keyed by the CDR, so a CDR is rated once; its ledger key
   cdr:<node>:<edge id> names its line in the batch's ledger transaction), post one ledger
   transaction per company with one debit per profile (profiles may go negative: the call
   already happened) and the revenue, and add the bundle minutes used.
A job killed at any point rolls back the whole batch, which stays queued for the next run.

After commit, profiles whose balance fell below their auto-recharge threshold are topped up
and the bundle periods used are handed to a task for their 80% and 100% notices.

Deck lookups are in memory (a dict per deck, longest prefix first) and every write is one
statement (COPY, or an UPDATE from arrays) per batch, so a batch of 100,000 CDRs costs a
handful of round trips.
"""

from __future__ import annotations

import bisect
import gc
import io
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import ngettext

from apps.billing.ledger.services import Posting, ledger_post_many, platform_account, profile_accounts
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.billing.recharge.profile import profiles_balance_debited
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundle_periods_used
from apps.cdrs.models import Cdr, CdrRating, PendingCdr
from apps.cdrs.peaks import CHANNEL_LIMIT, peaks_recompute
from apps.core.actor import Actor
from apps.rating.daily import daily_add, daily_sums
from apps.rating.models import NEVER_PRICED, BlockedPrefix, DestinationClass, Rate, RateDeck
from apps.sip_profiles.services import sip_profiles_mark_for_provisioning

logger = logging.getLogger(__name__)

PLACES = Decimal("0.0001")
ZERO = Decimal("0")
SIXTY = Decimal(60)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# Destinations whose calls use US minute bundles.
BUNDLE_COUNTRY = "US"
BUNDLE_CLASSES = frozenset({DestinationClass.LANDLINE.value, DestinationClass.MOBILE.value})
NEVER_PRICED_CLASSES = frozenset(c.value for c in NEVER_PRICED)
Status = CdrRating.Status
NULL = "\\N"  # COPY's null


@dataclass(frozen=True, slots=True)
class Tariff:
    """One rate of a deck, as the engine needs it."""

    prefix: str
    price_per_minute: Decimal
    connection_fee: Decimal
    first_increment: int
    next_increment: int
    destination_class: str
    country: str

    @property
    def uses_bundles(self) -> bool:
        return self.country == BUNDLE_COUNTRY and self.destination_class in BUNDLE_CLASSES


def billed_seconds(seconds: int, first: int, following: int) -> int:
    """Seconds charged for a call of `seconds`: the first increment, then whole next increments."""
    if seconds <= 0:
        return 0
    if seconds <= first:
        return first
    return first + -(-(seconds - first) // following) * following


def standard_cost(tariff: Tariff, seconds: int) -> Decimal:
    """Connection fee plus the price per minute for the billed seconds, rounded half-up to
    4 places once. Zero seconds cost nothing (no connection fee)."""
    if seconds <= 0:
        return ZERO
    billed = billed_seconds(seconds, tariff.first_increment, tariff.next_increment)
    return (tariff.connection_fee + tariff.price_per_minute * billed / SIXTY).quantize(PLACES, rounding=ROUND_HALF_UP)


class Deck:
    """The rates of one deck, for longest-prefix matches in memory."""

    def __init__(self, deck_id: int, tariffs: Iterable[Tariff]) -> None:
        self.id = deck_id
        self.tariffs = {t.prefix: t for t in tariffs}
        self.lengths = sorted({len(p) for p in self.tariffs}, reverse=True)

    def match(self, digits: str) -> Tariff | None:
        tariffs = self.tariffs
        for length in self.lengths:
            if length <= len(digits):
                tariff = tariffs.get(digits[:length])
                if tariff is not None:
                    return tariff
        return None

    @classmethod
    def load(cls, deck_id: int) -> Deck:
        rows = Rate.objects.filter(deck_id=deck_id).values_list(
            "prefix",
            "price_per_minute",
            "connection_fee",
            "first_increment",
            "next_increment",
            "destination_class",
            "country",
        )
        return cls(deck_id, (Tariff(*row) for row in rows.iterator(chunk_size=20_000)))


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: calls, decks and periods are compared as integers."""
    return (moment - EPOCH) // ONE_MICROSECOND


class Decks:
    """The active decks of each currency by effective time, loaded when first needed. One
    instance serves one run of the job (decks do not change once active)."""

    def __init__(self) -> None:
        self._timeline: dict[str, tuple[list[int], list[int]]] = {}
        self._decks: dict[int, Deck] = {}
        # The last answer per currency and the time span it holds for: calls come in batches
        # of nearly the same time, so most look-ups are one comparison.
        self._last: dict[str, tuple[int, int, Deck | None]] = {}

    def in_force(self, currency: str, at: int) -> Deck | None:
        """The deck of `currency` in force at `at` (microseconds since the epoch)."""
        last = self._last.get(currency)
        if last is not None and last[0] <= at < last[1]:
            return last[2]
        starts, ids = self._timeline_of(currency)
        index = bisect.bisect_right(starts, at)  # decks starting at or before `at`
        deck = self._deck(ids[index - 1]) if index else None
        low = starts[index - 1] if index else -(2**63)
        high = starts[index] if index < len(starts) else 2**63
        self._last[currency] = (low, high, deck)
        return deck

    def _timeline_of(self, currency: str) -> tuple[list[int], list[int]]:
        timeline = self._timeline.get(currency)
        if timeline is None:
            rows = list(
                RateDeck.objects.filter(currency=currency, status=RateDeck.Status.ACTIVE)
                .order_by("effective_from")
                .values_list("effective_from", "pk")
            )
            # Active decks always have an effective time (a CHECK constraint).
            timeline = self._timeline[currency] = ([micros(r[0]) for r in rows if r[0]], [r[1] for r in rows if r[0]])
        return timeline

    def _deck(self, deck_id: int) -> Deck:
        deck = self._decks.get(deck_id)
        if deck is None:
            deck = self._decks[deck_id] = _loaded_deck(deck_id)
        return deck


# The rates of a deck never change (they are read only; a new price list is a new deck), so a
# deck loaded once is kept for later runs of this process: the edge's CDR import rates every
# second, and loading a 100,000-rate deck each time would cost most of that second. Which
# decks are in force is read again by every run (Decks' timeline). The few most recently
# used are kept.
MAX_LOADED_DECKS = 6
_loaded_decks: OrderedDict[int, Deck] = OrderedDict()


def _loaded_deck(deck_id: int) -> Deck:
    deck = _loaded_decks.get(deck_id)
    if deck is None:
        deck = _loaded_decks[deck_id] = Deck.load(deck_id)
        while len(_loaded_decks) > MAX_LOADED_DECKS:
            _loaded_decks.popitem(last=False)
    else:
        _loaded_decks.move_to_end(deck_id)
    return deck


class Blocklist:
    """The staff's blocked E.164 ranges ("+" prefixes). Dialled short codes never reach a CDR:
    the edge refuses them and a CDR's callee is E.164."""

    def __init__(self, rules: Iterable[tuple[str, bool]]) -> None:
        self.prefixes: set[str] = set()
        self.exact: set[str] = set()
        for prefix, exact in rules:
            (self.exact if exact else self.prefixes).add(prefix.lstrip("+"))
        self.lengths = sorted({len(p) for p in self.prefixes}, reverse=True)

    @classmethod
    def load(cls) -> Blocklist:
        return cls(BlockedPrefix.objects.filter(prefix__startswith="+").values_list("prefix", "exact"))

    def blocks(self, digits: str) -> bool:
        if digits in self.exact:
            return True
        prefixes = self.prefixes
        for length in self.lengths:  # noqa: SIM110 (a plain loop: this runs for every call)
            if digits[:length] in prefixes:
                return True
        return False


class Call(NamedTuple):
    """The columns of a CDR that rating reads (a tuple: a batch builds tens of thousands)."""

    id: int
    profile_id: int | None
    company_id: int
    currency: str
    outbound: bool
    callee: str
    started_at: int  # microseconds since the epoch
    billable_seconds: int
    answered: bool
    direction: str
    refusal_reason: str


@dataclass(slots=True)
class Period:
    """A bundle period being consumed within a batch."""

    id: int
    start: int  # microseconds since the epoch
    end: int
    minutes_left: int


@dataclass(slots=True)
class Decision:
    status: str
    cost: Decimal = ZERO
    prefix: str = ""
    bundle_seconds: int = 0
    bundle_minutes: int = 0
    note: str = ""
    period_id: int = 0
    # The rate that priced the call (the daily figures' destination).
    tariff: Tariff | None = None


def price_call(call: Call, *, decks: Decks, blocklist: Blocklist, period: Period | None) -> Decision:
    """What one call costs. Consumes minutes of `period` (the profile's bundle period the
    call started in, if any) for a US landline or mobile call."""
    if not call.outbound:
        return INBOUND_CALL
    if not call.answered or call.billable_seconds <= 0:
        return NOT_ANSWERED
    digits = call.callee[1:]
    if blocklist.blocks(digits):
        return BLOCKED_BY_STAFF
    if call.profile_id is None:
        return Decision(Status.ERROR, note="The call has no SIP profile")
    deck = decks.in_force(call.currency, call.started_at)
    if deck is None:
        return Decision(Status.ERROR, note=f"No {call.currency} rate deck was in force when the call started")
    tariff = deck.match(digits)
    if tariff is None:
        return Decision(Status.ERROR, note=f"No {call.currency} rate covers {call.callee}")
    if tariff.destination_class in NEVER_PRICED_CLASSES:
        return Decision(Status.BLOCKED, prefix=tariff.prefix, note="Blocked destination: never priced", tariff=tariff)
    seconds = call.billable_seconds
    if tariff.uses_bundles and period is not None and period.minutes_left > 0:
        minutes = -(-seconds // 60)
        used = min(minutes, period.minutes_left)
        period.minutes_left -= used
        covered = min(seconds, used * 60)
        rest = seconds - covered
        if rest <= 0:
            return Decision(
                Status.BUNDLE,
                prefix=tariff.prefix,
                bundle_seconds=covered,
                bundle_minutes=used,
                period_id=period.id,
                tariff=tariff,
            )
        return Decision(
            Status.RATED,
            cost=standard_cost(tariff, rest),
            prefix=tariff.prefix,
            bundle_seconds=covered,
            bundle_minutes=used,
            note=f"{used} bundle minutes, then the standard rate",
            period_id=period.id,
            tariff=tariff,
        )
    return Decision(Status.RATED, cost=standard_cost(tariff, seconds), prefix=tariff.prefix, tariff=tariff)


# Shared answers (never modified).
INBOUND_CALL = Decision(Status.ZERO_RATED, note="Inbound call")
NOT_ANSWERED = Decision(Status.ZERO_RATED, note="Not answered")
BLOCKED_BY_STAFF = Decision(Status.BLOCKED, note="Blocked destination: never priced")


@dataclass
class BatchResult:
    cdrs: int = 0
    charged: int = 0
    total: dict[str, Decimal] = field(default_factory=dict)
    bundle_minutes: int = 0
    errors: int = 0
    profiles: list[int] = field(default_factory=list)
    periods: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


_CALL_COLUMNS = (
    "c.id, c.sip_profile_id, c.company_id, co.currency, c.direction = 'outbound', c.callee, {started},"
    " c.billable_seconds, c.answered_at IS NOT NULL, c.direction, c.refusal_reason"
)
_PG_STARTED = "(extract(epoch FROM c.started_at) * 1000000)::bigint"


# Batches run one at a time (a transaction-level advisory lock, released at commit or
# rollback): bundle minutes go to calls in CDR order, whichever job takes which batch.
# Batches would queue on the calls revenue account's row lock anyway.
RATING_LOCK = 0x5241_5445  # "RATE"


def _claim(limit: int) -> list[Call]:
    """Take up to `limit` queued CDRs (oldest first) out of the queue, in the caller's
    transaction, after the batch before has committed."""
    cdr, pending, company = Cdr._meta.db_table, PendingCdr._meta.db_table, "companies_company"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RATING_LOCK])
            # Index probes both ways (= ANY(ARRAY(...))): the CDR table holds every call ever made.
            cursor.execute(
                f"WITH claimed AS (DELETE FROM {pending} WHERE cdr_id = ANY(ARRAY("  # noqa: S608 (constant names)
                f"  SELECT cdr_id FROM {pending} ORDER BY cdr_id LIMIT %s FOR UPDATE SKIP LOCKED)) RETURNING cdr_id)"
                f" SELECT {_CALL_COLUMNS.format(started=_PG_STARTED)}"
                f" FROM {cdr} c JOIN {company} co ON co.id = c.company_id"
                " WHERE c.id = ANY(ARRAY(SELECT cdr_id FROM claimed)) ORDER BY c.id",
                [limit],
            )
            return list(map(Call._make, cursor.fetchall()))
        # SQLite (a laptop): one writer at a time, so no row locks are needed.
        ids = list(PendingCdr.objects.order_by("cdr_id").values_list("cdr_id", flat=True)[:limit])
        if not ids:
            return []
        PendingCdr.objects.filter(cdr_id__in=ids).delete()
        marks = ", ".join(["%s"] * len(ids))
        cursor.execute(
            f"SELECT {_CALL_COLUMNS.format(started='c.started_at')} FROM {cdr} c"  # noqa: S608
            f" JOIN {company} co ON co.id = c.company_id"
            f" WHERE c.id IN ({marks}) ORDER BY c.id",
            ids,
        )
        return [
            Call(r[0], r[1], r[2], r[3], bool(r[4]), r[5], micros(_aware(r[6])), r[7], bool(r[8]), r[9], r[10])
            for r in cursor.fetchall()
        ]


def _aware(value: datetime | str) -> datetime:
    """A timestamp as SQLite's driver returns it (text or naive, in UTC), made aware."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bundle_periods(calls: Sequence[Call]) -> dict[int, list[Period]]:
    """The bundle periods the batch's outbound calls may use, locked, by profile."""
    wanted = [c for c in calls if c.profile_id is not None and c.outbound and c.answered]
    if not wanted:
        return {}
    profiles = {c.profile_id for c in wanted}
    first = EPOCH + ONE_MICROSECOND * min(c.started_at for c in wanted)
    last = EPOCH + ONE_MICROSECOND * max(c.started_at for c in wanted)
    rows = (
        BundlePeriod.objects.select_for_update()
        .filter(sip_profile_id__any=profiles, period_start__lte=last, period_end__gt=first)
        .order_by("pk")
        .values_list(
            "pk", "sip_profile_id", "period_start", "period_end", "minutes_included", "minutes_used", "suspended"
        )
    )
    periods: dict[int, list[Period]] = defaultdict(list)
    for pk, profile_id, start, end, included, used, suspended in rows:
        periods[profile_id].append(Period(pk, micros(start), micros(end), 0 if suspended else included - used))
    for items in periods.values():
        items.sort(key=lambda p: p.start)
    return periods


def _period_of(periods: list[Period] | None, at: int) -> Period | None:
    if not periods:
        return None
    for period in periods:
        if period.start <= at < period.end:
            return period
    return None


def _write_ratings(rows: Sequence[tuple[object, ...]]) -> None:
    columns = (
        "cdr_id",
        "status",
        "cost",
        "currency",
        "rate_prefix",
        "bundle_seconds",
        "bundle_minutes",
        "note",
        "rated_at",
        "ledger_transaction_id",
    )
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        write = buffer.write
        for cdr_id, status, cost, currency, prefix, seconds, minutes, note, rated_at, txn in rows:
            write(
                f"{cdr_id}\t{status}\t{cost}\t{currency}\t{prefix}\t{seconds}\t{minutes}\t{note}\t{rated_at}\t"
                f"{NULL if txn is None else txn}\n"
            )
        with (
            connection.wrap_database_errors,  # psycopg's errors as Django's (IntegrityError…)
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {CdrRating._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
        return
    CdrRating.objects.bulk_create([CdrRating(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500)


def _add_minutes(used: dict[int, int], now: datetime) -> None:
    if not used:
        return
    table = BundlePeriod._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} b SET minutes_used = b.minutes_used + u.minutes, updated_at = %s"  # noqa: S608
                " FROM unnest(%s::bigint[], %s::integer[]) AS u(id, minutes) WHERE b.id = u.id",
                [now, list(used), list(used.values())],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET minutes_used = minutes_used + %s, updated_at = %s WHERE id = %s",  # noqa: S608
                [(minutes, now, pk) for pk, minutes in used.items()],
            )


def _drop_stale_queue_rows() -> int:
    """Queue rows of CDRs already rated (put back by hand): rating them again would break the
    one-rating-per-CDR key and stop every later batch behind them. Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {PendingCdr._meta.db_table} p USING {CdrRating._meta.db_table} r"  # noqa: S608
            " WHERE r.cdr_id = p.cdr_id"
        )
        return int(cursor.rowcount)


def rate_batch(
    *,
    limit: int | None = None,
    decks: Decks | None = None,
    blocklist: Blocklist | None = None,
    account_of: dict[int, int] | None = None,
) -> BatchResult | None:
    """Rate up to `limit` (settings.RATING_BATCH_SIZE) queued CDRs in one transaction. Returns
    None when none was queued. `decks`, `blocklist` and `account_of` (profile id → balance
    account id) may be shared by the batches of one run."""
    limit = limit or settings.RATING_BATCH_SIZE
    try:
        return _rate_batch(limit=limit, decks=decks, blocklist=blocklist, account_of=account_of)
    except IntegrityError:
        # Nothing was written (the batch rolled back). If the cause was CDRs rated before and
        # queued again, drop those queue rows and go on; anything else is raised.
        dropped = _drop_stale_queue_rows()
        if not dropped:
            raise
        logger.warning("Dropped %s queued CDRs that were already rated", dropped)
        return _rate_batch(limit=limit, decks=decks, blocklist=blocklist, account_of=account_of)


# --- The money of a batch: pure functions, no database -------------------------------------


@dataclass(slots=True)
class CompanyCalls:
    """What one company's calls of a batch cost: one ledger transaction, one debit per profile."""

    company_id: int
    currency: str
    first_call: int  # the id of its first charged CDR in the batch: the transaction's key
    calls: int
    by_profile: dict[int, Decimal]  # profile id → what its calls cost (positive)

    @property
    def total(self) -> Decimal:
        return sum(self.by_profile.values(), ZERO)

    @property
    def key(self) -> str:
        return f"calls:{self.company_id}:{self.first_call}"

    @property
    def description(self) -> str:
        return "Calls: " + ngettext("%(n)d call rated", "%(n)d calls rated", self.calls) % {"n": self.calls}


@dataclass(slots=True)
class BatchMoney:
    """The batch's charges by company (in the order of their first charged call) and the bundle
    minutes it used, by bundle period."""

    companies: list[CompanyCalls]
    minutes: dict[int, int]

    @property
    def charged(self) -> int:
        return sum(c.calls for c in self.companies)

    @property
    def profiles(self) -> set[int]:
        return {p for c in self.companies for p in c.by_profile}

    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for company in self.companies:
            totals[company.currency] = totals.get(company.currency, ZERO) + company.total
        return totals


def batch_money(calls: Sequence[Call], decisions: Sequence[Decision]) -> BatchMoney:
    """Sum the batch's decisions: what each company's profiles owe and the minutes used."""
    companies: dict[int, CompanyCalls] = {}
    minutes: dict[int, int] = defaultdict(int)
    for call, decision in zip(calls, decisions, strict=True):
        if decision.cost:
            company = companies.get(call.company_id)
            if company is None:
                company = companies[call.company_id] = CompanyCalls(
                    call.company_id, call.currency, call.id, 0, defaultdict(Decimal)
                )
            company.by_profile[call.profile_id] += decision.cost  # type: ignore[index]
            company.calls += 1
        if decision.bundle_minutes:
            minutes[decision.period_id] += decision.bundle_minutes
    return BatchMoney(list(companies.values()), dict(minutes))


def batch_postings(money: BatchMoney, *, account_of: dict[int, int], revenue_of: dict[str, int]) -> list[Posting]:
    """One ledger posting per company: a debit per profile (`account_of`: profile id → its balance
    account id), in profile order, and the total credited to the calls revenue of its currency."""
    return [
        Posting(
            key=company.key,
            company_id=company.company_id,
            currency=company.currency,
            description=company.description,
            legs=[
                *((account_of[p], -amount) for p, amount in sorted(company.by_profile.items())),
                (revenue_of[company.currency], company.total),
            ],
        )
        for company in money.companies
    ]


def rating_rows(
    calls: Sequence[Call], decisions: Sequence[Decision], *, txn_of: dict[int, int], stamp: str
) -> list[tuple[object, ...]]:
    """The CdrRating rows of the batch; a charged call names its company's ledger transaction."""
    return [
        (
            call.id,
            decision.status,
            decision.cost,
            call.currency,
            decision.prefix,
            decision.bundle_seconds,
            decision.bundle_minutes,
            decision.note,
            stamp,
            txn_of[call.company_id] if decision.cost else None,
        )
        for call, decision in zip(calls, decisions, strict=True)
    ]


# --- One batch ---------------------------------------------------------------------------


def _price_all(
    calls: Sequence[Call], periods: dict[int, list[Period]], *, decks: Decks, blocklist: Blocklist
) -> list[Decision]:
    decisions = []
    for call in calls:
        mine = periods.get(call.profile_id) if call.profile_id is not None else None
        decisions.append(price_call(call, decks=decks, blocklist=blocklist, period=_period_of(mine, call.started_at)))
    return decisions


def _post(money: BatchMoney, account_of: dict[int, int] | None) -> dict[int, int]:
    """Post the batch's ledger transactions; {company id: its transaction id}. `account_of`
    (profile id → balance account id) is filled with the profiles it did not know."""
    charged = money.profiles
    known = account_of if account_of is not None else {}
    missing = charged - known.keys()
    if missing:
        known.update(profile_accounts(missing))
    accounts = {p: known[p] for p in charged}
    revenue = {
        currency: platform_account(LedgerAccount.Kind.REVENUE_CALLS, currency).pk
        for currency in {c.currency for c in money.companies}
    }
    posted = ledger_post_many(
        actor=Actor.system(),
        kind=LedgerTransaction.Kind.CALL,
        postings=batch_postings(money, account_of=accounts, revenue_of=revenue),
        may_go_negative=set(accounts.values()),
    )
    return {c.company_id: posted[c.key] for c in money.companies}


def _rate_batch(
    *, limit: int, decks: Decks | None, blocklist: Blocklist | None, account_of: dict[int, int] | None
) -> BatchResult | None:
    decks = decks or Decks()
    blocklist = blocklist or Blocklist.load()
    result = BatchResult()
    clock = _Steps(result.timings)
    with transaction.atomic():
        calls = _claim(limit)
        if not calls:
            return None
        now = timezone.now()
        periods = _bundle_periods(calls)
        clock.step("claim")
        decisions = _price_all(calls, periods, decks=decks, blocklist=blocklist)
        clock.step("price")
        money = batch_money(calls, decisions)
        txn_of = _post(money, account_of)
        clock.step("ledger")
        rows = rating_rows(calls, decisions, txn_of=txn_of, stamp=now.isoformat())
        clock.step("rows")
        _write_ratings(rows)
        clock.step("copy")
        daily = daily_sums(calls, decisions, decks=decks)
        clock.step("daily_sums")
        daily_add(daily)
        clock.step("daily_write")
        # The peaks of the (profile, day) pairs these calls touch, from those pairs' calls: only
        # answered calls hold a channel, and only refusals at the limit count in the report.
        peaks_recompute(
            cdr_ids=[c.id for c in calls if c.profile_id and (c.answered or c.refusal_reason == CHANNEL_LIMIT)]
        )
        clock.step("peaks")
        _add_minutes(money.minutes, now)
        # A period this batch used up: US calls no longer pass on bundle minutes (the edge's
        # `bundle`); only those profiles are marked, not every profile the batch rated.
        emptied = {
            pid for pid, items in periods.items() for p in items if p.id in money.minutes and p.minutes_left <= 0
        }
        sip_profiles_mark_for_provisioning(profile_ids=emptied)
        clock.step("minutes")

        result.cdrs = len(calls)
        result.charged = money.charged
        result.errors = sum(1 for decision in decisions if decision.status == Status.ERROR)
        result.total = money.totals()
        result.bundle_minutes = sum(money.minutes.values())
        result.profiles = sorted(money.profiles)
        result.periods = sorted(money.minutes)

        # After commit: top-ups for profiles below their threshold, notices for the periods.
        profiles_balance_debited(result.profiles)
        bundle_periods_used(result.periods)
        clock.step()
    clock.step("commit")
    logger.debug("rating batch of %s: %s", result.cdrs, {k: round(v, 3) for k, v in result.timings.items()})
    return result


class _Steps:
    """Seconds spent in each named step, into `timings`."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.mark = time.perf_counter()

    def step(self, name: str | None = None) -> None:
        now = time.perf_counter()
        if name is not None:
            self.timings[name] = now - self.mark
        self.mark = now


@dataclass
class RunResult:
    batches: int = 0
    cdrs: int = 0
    charged: int = 0
    errors: int = 0
    bundle_minutes: int = 0
    total: dict[str, Decimal] = field(default_factory=dict)
    seconds: float = 0.0
    more: bool = False
    # Seconds spent in each step, over all batches (claim, price, ledger, rows, copy, …).
    timings: dict[str, float] = field(default_factory=dict)


def rate_pending(
    *, batch_size: int | None = None, max_batches: int | None = None, max_seconds: float | None = None
) -> RunResult:
    """Rate queued CDRs batch after batch (settings.RATING_BATCH_SIZE each) until none is
    left, or `max_batches` / `max_seconds` is reached (`more` then says CDRs may be left).
    What the scheduled job runs."""
    batch_size = batch_size or settings.RATING_BATCH_SIZE
    started = time.perf_counter()
    run = RunResult()
    decks, blocklist, account_of = Decks(), Blocklist.load(), dict[int, int]()
    while True:
        if max_batches is not None and run.batches >= max_batches:
            run.more = True
            break
        if max_seconds is not None and time.perf_counter() - started >= max_seconds:
            run.more = True
            break
        # No cyclic garbage collection within a batch: its hundreds of thousands of tuples
        # would make Python walk every live object again and again (reference counting frees
        # them; a batch makes no cycles).
        gc.disable()
        try:
            batch = rate_batch(limit=batch_size, decks=decks, blocklist=blocklist, account_of=account_of)
        finally:
            gc.enable()
        if batch is None:
            break
        run.batches += 1
        run.cdrs += batch.cdrs
        run.charged += batch.charged
        run.errors += batch.errors
        run.bundle_minutes += batch.bundle_minutes
        for currency, amount in batch.total.items():
            run.total[currency] = run.total.get(currency, ZERO) + amount
        for step, seconds in batch.timings.items():
            run.timings[step] = run.timings.get(step, 0.0) + seconds
        if batch.cdrs < batch_size:
            break
    run.seconds = time.perf_counter() - started
    if run.cdrs:
        logger.info(
            "Rated %s CDRs in %s batches (%.1f s): %s charged, %s not rated",
            run.cdrs,
            run.batches,
            run.seconds,
            run.charged,
            run.errors,
        )
    return run
