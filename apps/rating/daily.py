"""The daily call figures (apps.cdrs.models.DailyCalls) that reports read: summed from a rating
batch's calls and decisions in memory, added to the table in one statement in the batch's own
transaction, and rebuilt from the ratings by `manage.py rating_daily_rebuild` (with the daily
channel peaks, apps.cdrs.peaks, which are maxima and are recomputed rather than added to).

A batch of 100,000 calls of a few thousand profiles spread over a month makes tens of
thousands of rows; they go through COPY into a temporary table and one INSERT … SELECT … ON
CONFLICT DO UPDATE that adds each row's sums to the row already there. Two more statements
add the same rows' sums, grouped, to the roll-ups reports read (MonthlyCalls: per month, profile
and destination; ProfileDayCalls: per day and profile), so all three always agree."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from django.db import connection, transaction

from apps.cdrs.models import Cdr, CdrRating, ChannelPeakDay, DailyCalls, MonthlyCalls, ProfileDayCalls
from apps.cdrs.peaks import peaks_rebuild

if TYPE_CHECKING:
    from apps.rating.engine import Decks, Tariff

DAY = 86_400_000_000  # microseconds
EPOCH_DAY = date(1970, 1, 1)
ERROR = CdrRating.Status.ERROR.value
OUTBOUND = Cdr.Direction.OUTBOUND.value

# (company id, day number since the epoch, profile id (0: none), direction, country, class, refusal reason)
Key = tuple[int, int, int, str, str, str, str]
# [calls, answered, billable seconds, bundle seconds, bundle minutes, cost, unrated]
Sums = list[int | Decimal]

KEY_COLUMNS = ("company_id", "day", "sip_profile_id", "direction", "country", "destination_class", "refusal_reason")
SUM_COLUMNS = ("calls", "answered", "billable_seconds", "bundle_seconds", "bundle_minutes", "cost", "unrated")


class RatedCall(Protocol):
    """What the figures read of a call (the engine's Call)."""

    @property
    def profile_id(self) -> int | None: ...
    @property
    def company_id(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def callee(self) -> str: ...
    @property
    def started_at(self) -> int: ...  # microseconds since the epoch
    @property
    def billable_seconds(self) -> int: ...
    @property
    def answered(self) -> bool: ...
    @property
    def refusal_reason(self) -> str: ...


class Outcome(Protocol):
    """What the figures read of a rating decision (the engine's Decision)."""

    @property
    def status(self) -> str: ...
    @property
    def cost(self) -> Decimal: ...
    @property
    def bundle_seconds(self) -> int: ...
    @property
    def bundle_minutes(self) -> int: ...
    @property
    def tariff(self) -> Tariff | None: ...


def daily_sums(calls: Sequence[RatedCall], outcomes: Sequence[Outcome], *, decks: Decks) -> dict[Key, Sums]:
    """The batch's calls summed by profile, UTC day and destination. An outbound call the
    engine priced names its rate; one it did not price (unanswered, refused, blocked, no
    profile) is looked up in the deck in force when it started, for its destination only."""
    sums: dict[Key, Sums] = {}
    for call, outcome in zip(calls, outcomes, strict=True):
        country = kind = ""
        if call.direction == OUTBOUND:
            tariff = outcome.tariff
            if tariff is None:
                deck = decks.in_force(call.currency, call.started_at)
                tariff = deck.match(call.callee[1:]) if deck is not None else None
            if tariff is not None:
                country, kind = tariff.country, tariff.destination_class
        key = (
            call.company_id,
            call.started_at // DAY,
            call.profile_id or 0,
            call.direction,
            country,
            kind,
            call.refusal_reason,
        )
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0, 0, 0, 0, 0, Decimal(0), 0]
        row[0] += 1
        if call.answered:
            row[1] += 1
            row[2] += call.billable_seconds
        if outcome.bundle_minutes:
            row[3] += outcome.bundle_seconds
            row[4] += outcome.bundle_minutes
        if outcome.cost:
            row[5] += outcome.cost
        if outcome.status == ERROR:
            row[6] += 1
    return sums


def daily_add(sums: dict[Key, Sums]) -> None:
    """Add `sums` to the daily figures, in the caller's transaction. (Whoever writes them holds
    the rating lock, so no two writers lock rows in different orders.)"""
    if not sums:
        return
    table = DailyCalls._meta.db_table
    columns = ", ".join((*KEY_COLUMNS, *SUM_COLUMNS))
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        write = buffer.write
        for (company, day, profile, direction, country, kind, refusal), s in sums.items():
            write(
                f"{company}\t{day}\t{profile}\t{direction}\t{country}\t{kind}\t"
                f"{refusal}\t{s[0]}\t{s[1]}\t{s[2]}\t{s[3]}\t{s[4]}\t{s[5]}\t{s[6]}\n"
            )
        updates = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in SUM_COLUMNS)
        with connection.cursor() as cursor:
            # The day travels as its number (COPY of an integer is cheaper than of a date).
            cursor.execute(
                "CREATE TEMPORARY TABLE rating_daily_batch (company_id bigint, day integer, sip_profile_id bigint,"
                " direction text, country text, destination_class text, refusal_reason text, calls integer,"
                " answered integer, billable_seconds bigint, bundle_seconds bigint, bundle_minutes bigint,"
                " cost numeric, unrated integer) ON COMMIT DROP"
            )
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY rating_daily_batch ({columns}) FROM STDIN") as copy,
            ):
                copy.write(buffer.getvalue())
            select = ", ".join(("company_id", "DATE '1970-01-01' + day", *KEY_COLUMNS[2:], *SUM_COLUMNS))
            cursor.execute(
                f"INSERT INTO {table} AS d ({columns}) SELECT {select} FROM rating_daily_batch"  # noqa: S608
                f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates}"
            )
            for statement in _rollups_sql():
                cursor.execute(statement)
            cursor.execute("DROP TABLE rating_daily_batch")
        return
    # SQLite (a laptop): the roll-ups are summed here.
    monthly: dict[tuple[Any, ...], Sums] = {}
    per_day: dict[tuple[Any, ...], Sums] = {}
    for (company, day, profile, direction, country, kind, refusal), s in sums.items():
        first = (EPOCH_DAY + timedelta(days=day)).replace(day=1)
        _add(monthly, (company, first, profile, direction, country, kind, refusal), s)
        _add(per_day, (company, EPOCH_DAY + timedelta(days=day), profile), [*s, *_refused(refusal, s[0])])
    with connection.cursor() as cursor:
        for model, rows in (
            (DailyCalls, {(k[0], EPOCH_DAY + timedelta(days=k[1]), *k[2:]): s for k, s in sums.items()}),
            (MonthlyCalls, monthly),
            (ProfileDayCalls, per_day),
        ):
            keys = [f.column for f in model._meta.pk_fields]  # type: ignore[attr-defined]
            values = [c for c in (*SUM_COLUMNS, *ROLLUP_REFUSED) if c in {f.column for f in model._meta.fields}]
            names = ", ".join((*keys, *values))
            marks = ", ".join(["%s"] * (len(keys) + len(values)))
            updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in values)
            cursor.executemany(
                f"INSERT INTO {model._meta.db_table} ({names}) VALUES ({marks})"  # noqa: S608
                f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                [(*key, *s) for key, s in rows.items()],
            )


ROLLUP_REFUSED = ("refused", "refused_at_channel_limit")
CHANNEL_LIMIT = Cdr.RefusalReason.CHANNEL_LIMIT.value


def _refused(reason: str, calls: int | Decimal) -> tuple[int | Decimal, int | Decimal]:
    return (calls if reason else 0, calls if reason == CHANNEL_LIMIT else 0)


def _add(into: dict[tuple[Any, ...], Sums], key: tuple[Any, ...], sums: Sums) -> None:
    row = into.get(key)
    if row is None:
        into[key] = list(sums)
    else:
        for n, value in enumerate(sums):
            row[n] += value


def _rollups_sql() -> list[str]:
    """The statements adding the staged batch (rating_daily_batch) to the roll-ups, grouped."""
    sums = ", ".join(f"sum({c})" for c in SUM_COLUMNS)
    monthly_keys = ", ".join(("company_id", "month", *KEY_COLUMNS[2:]))
    day_keys = "company_id, day, sip_profile_id"
    monthly_updates = ", ".join(f"{c} = m.{c} + EXCLUDED.{c}" for c in SUM_COLUMNS)
    day_updates = ", ".join(f"{c} = p.{c} + EXCLUDED.{c}" for c in (*SUM_COLUMNS, *ROLLUP_REFUSED))
    # The batch's rows are sorted by their key before the upsert: neighbouring keys land on the
    # same index pages.
    return [
        f"INSERT INTO {MonthlyCalls._meta.db_table} AS m ({monthly_keys}, {', '.join(SUM_COLUMNS)})"  # noqa: S608
        f" SELECT company_id, date_trunc('month', DATE '1970-01-01' + day)::date, {', '.join(KEY_COLUMNS[2:])},"
        f" {sums} FROM rating_daily_batch GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7"
        f" ON CONFLICT ({monthly_keys}) DO UPDATE SET {monthly_updates}",
        f"INSERT INTO {ProfileDayCalls._meta.db_table} AS p"  # noqa: S608
        f" ({day_keys}, {', '.join((*SUM_COLUMNS, *ROLLUP_REFUSED))})"
        f" SELECT company_id, DATE '1970-01-01' + day, sip_profile_id, {sums},"
        f" coalesce(sum(calls) FILTER (WHERE refusal_reason <> ''), 0),"
        f" coalesce(sum(calls) FILTER (WHERE refusal_reason = '{CHANNEL_LIMIT}'), 0)"
        f" FROM rating_daily_batch GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        f" ON CONFLICT ({day_keys}) DO UPDATE SET {day_updates}",
    ]


class _Rated:
    """A rated call and its decision as the rebuild reads them back."""

    __slots__ = (
        "answered",
        "billable_seconds",
        "bundle_minutes",
        "bundle_seconds",
        "callee",
        "company_id",
        "cost",
        "currency",
        "direction",
        "profile_id",
        "refusal_reason",
        "started_at",
        "status",
        "tariff",
    )

    profile_id: int | None
    company_id: int
    currency: str
    direction: str
    callee: str
    started_at: int
    billable_seconds: int
    answered: bool
    refusal_reason: str
    status: str
    cost: Decimal
    bundle_seconds: int
    bundle_minutes: int
    tariff: Tariff | None

    def __init__(self, row: tuple[object, ...]) -> None:
        (
            self.profile_id,
            self.company_id,
            self.currency,
            self.direction,
            self.callee,
            self.started_at,
            self.billable_seconds,
            self.answered,
            self.refusal_reason,
            self.status,
            self.cost,
            self.bundle_seconds,
            self.bundle_minutes,
        ) = row  # type: ignore[assignment]
        self.tariff = None


def _rated_calls(chunk: int, since: datetime | None = None) -> Iterator[list[_Rated]]:
    """Every rated CDR with its rating (of calls started from `since`), in chunks, oldest first
    (keyset on the CDR id)."""
    from apps.rating.engine import _aware, micros

    last = 0
    ratings = CdrRating.objects.filter(cdr__started_at__gte=since) if since else CdrRating.objects.all()
    while True:
        rows = list(
            ratings.filter(cdr_id__gt=last)
            .order_by("cdr_id")
            .values_list(
                "cdr_id",
                "cdr__sip_profile_id",
                "cdr__company_id",
                "cdr__company__currency",
                "cdr__direction",
                "cdr__callee",
                "cdr__started_at",
                "cdr__billable_seconds",
                "cdr__answered_at",
                "cdr__refusal_reason",
                "status",
                "cost",
                "bundle_seconds",
                "bundle_minutes",
            )[:chunk]
        )
        if not rows:
            return
        last = rows[-1][0]
        yield [
            _Rated((*r[1:6], micros(_aware(r[6])), r[7], r[8] is not None, *r[9:]))  # type: ignore[arg-type]
            for r in rows
        ]


def daily_rebuild(*, chunk: int = 50_000, since: date | None = None) -> int:
    """Recompute every daily figure from the ratings, in one transaction that holds the rating
    lock (no batch rates meanwhile, so no call is counted twice or missed). Returns the number
    of CDRs read. `since` (a month's first day): only the figures from that month on; older
    ones are left as they are (their CDRs may have been deleted by the retention purge, so a
    rebuild from the ratings would lose them)."""
    from apps.rating.engine import RATING_LOCK, Decks

    decks = Decks()
    read = 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RATING_LOCK])
            for model, column in (
                (DailyCalls, "day"),
                (MonthlyCalls, "month"),
                (ProfileDayCalls, "day"),
                (ChannelPeakDay, "day"),
            ):
                if since is None:
                    cursor.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608
                else:
                    cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {column} >= %s", [since])  # noqa: S608
        start = datetime(since.year, since.month, since.day, tzinfo=UTC) if since else None
        for calls in _rated_calls(chunk, start):
            daily_add(daily_sums(calls, calls, decks=decks))
            read += len(calls)
        # The peaks are maxima over each day's calls, not sums: one sweep of the CDRs.
        peaks_rebuild(since=since)
    return read
