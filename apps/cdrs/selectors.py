"""Reads about CDRs: whether a company has calls, the rating backlog, and a company's calls
with what rating decided for each, for the Calls page, its CSV and the API (`GET /api/v1/calls/`).

Rows are plain dicts (.values(), one query a page; the CSV streams them in chunks), newest
first by (started_at, id), which the index cdr_company_start_id_idx serves. The destination's
name and the rate a call was charged at live in the rate decks, above this app: the rating app
registers the resolver (`call_destinations_register`) that fills them in, one query a page."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from django.conf import settings
from django.db.models import F, Max, QuerySet

from apps.cdrs.models import Cdr, CdrPurge, CdrRating, PendingCdr
from apps.companies.models import Company


def months_before(moment: datetime, months: int) -> datetime:
    """The same moment `months` calendar months earlier (31 March less one month: 28 or 29
    February, the last day that month has)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def call_retention_cutoff(*, now: datetime) -> datetime:
    """Calls that started before this are past CALL_RETENTION_MONTHS: their CDRs and ratings
    are deleted (the daily figures stay). Queries: 0."""
    return months_before(now, settings.CALL_RETENTION_MONTHS)


def cdrs_purged_before() -> datetime | None:
    """The latest retention cutoff a purge deleted calls before (apps.cdrs.models.CdrPurge),
    or None if none ever did. Queries: 1."""
    return CdrPurge.objects.aggregate(cutoff=Max("cutoff"))["cutoff"]


def purged_call_error(started_at: datetime, purged_before: datetime) -> str:
    return (
        f"start: calls before {purged_before:%Y-%m-%d %H:%M} UTC were deleted by the call retention "
        f"(CALL_RETENTION_MONTHS={settings.CALL_RETENTION_MONTHS}) after they were rated; this one "
        f"({started_at:%Y-%m-%d %H:%M} UTC) is not loaded again, so it is never charged twice."
    )


def company_has_calls(*, company: Company) -> bool:
    """Whether any call of the company went through the edge (its PBX is connected). Queries: 1."""
    return Cdr.objects.filter(company=company).exists()


@dataclass(frozen=True)
class RatingBacklog:
    waiting: int  # CDRs imported and not rated yet
    oldest_ended_at: datetime | None  # when the oldest of them ended (None: nothing waits)


def rating_backlog() -> RatingBacklog:
    """The rating job's queue: how many CDRs wait and since when the oldest call ended (the
    rating lag). Queries: 2 (the count, then the oldest by its key, the CDR's own order)."""
    waiting = PendingCdr.objects.count()
    oldest = (
        Cdr.objects.filter(pk=PendingCdr.objects.order_by("cdr_id").values("cdr_id")[:1])
        .values_list("ended_at", flat=True)
        .first()
        if waiting
        else None
    )
    return RatingBacklog(waiting=waiting, oldest_ended_at=oldest)


# (currency, rate prefix, started_at) of each call → (destination name, price per minute) or None.
DestinationResolver = Callable[[Sequence[tuple[str, str, datetime]]], list[tuple[str, Decimal] | None]]
_resolvers: list[DestinationResolver] = []


def call_destinations_register(resolver: DestinationResolver) -> None:
    """The rating app's AppConfig.ready() registers what names a call's destination and rate."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)


class PaidBy:
    """How a call was paid, as the Calls page, its CSV and the API name it."""

    CREDIT = "credit"  # the profile's credit, at the rate
    BUNDLE = "bundle"  # US minute bundle minutes only
    BUNDLE_AND_CREDIT = "bundle_and_credit"  # bundle minutes, then credit at the rate
    FREE = "free"  # inbound, not answered, zero seconds
    REFUSED = "refused"  # the edge refused it (refusal_reason says why); costs nothing
    BLOCKED = "blocked"  # a destination that is never priced
    NOT_RATED = "not_rated"  # no rate covered it (or no deck): marked, never hidden
    PENDING = "pending"  # waiting for the rating job

    CHOICES = (CREDIT, BUNDLE, BUNDLE_AND_CREDIT, FREE, REFUSED, BLOCKED, NOT_RATED, PENDING)
    # The ones a customer should look at: no money moved although the call may have cost some.
    MARKED = frozenset({NOT_RATED, PENDING})


CALL_COLUMNS = {
    "id": "id",
    "public_id": "public_id",
    "profile_id": F("sip_profile__public_id"),
    "profile_name": F("sip_profile__name"),
    "direction": "direction",
    "caller": "caller",
    "callee": "callee",
    "started_at": "started_at",
    "answered_at": "answered_at",
    "duration_seconds": "duration_seconds",
    "billable_seconds": "billable_seconds",
    "disposition": "disposition",
    "refusal_reason": "refusal_reason",
    "rating_status": F("rating__status"),
    "cost": F("rating__cost"),
    "currency": F("rating__currency"),
    "rate_prefix": F("rating__rate_prefix"),
    "bundle_minutes": F("rating__bundle_minutes"),
    "note": F("rating__note"),
}


def call_values(calls: QuerySet[Cdr]) -> QuerySet[Any]:
    """`calls` (already scoped to one company) as the list's dicts, newest first: one query,
    the rating and the profile joined by their primary keys."""
    plain = [name for name, source in CALL_COLUMNS.items() if isinstance(source, str)]
    joined = {name: source for name, source in CALL_COLUMNS.items() if not isinstance(source, str)}
    return calls.values(*plain, **joined).order_by("-started_at", "-id")


def call_list(*, company: Company) -> QuerySet[Any]:
    """The company's calls (every leg, refused ones too) with their rating, as dicts, newest
    first; filter with apps.cdrs.filters.CallFilter, page with apps.core.keyset."""
    return call_values(Cdr.objects.for_company(company))


def _paid_by(row: dict[str, Any]) -> str:
    status = row["rating_status"]
    if row["disposition"] == Cdr.Disposition.REFUSED:
        return PaidBy.REFUSED
    if status is None:
        return PaidBy.PENDING
    if status == CdrRating.Status.RATED:
        return PaidBy.BUNDLE_AND_CREDIT if row["bundle_minutes"] else PaidBy.CREDIT
    return {
        CdrRating.Status.BUNDLE: PaidBy.BUNDLE,
        CdrRating.Status.ZERO_RATED: PaidBy.FREE,
        CdrRating.Status.BLOCKED: PaidBy.BLOCKED,
    }.get(status, PaidBy.NOT_RATED)


def calls_describe(rows: list[dict[str, Any]], *, currency: str) -> list[dict[str, Any]]:
    """Add to each row how it was paid (`paid_by`), its destination's name and the rate per
    minute it was charged at (None where no rate applied); one query for all the rows."""
    keys = [(row["currency"] or currency, row["rate_prefix"] or "", row["started_at"]) for row in rows]
    found: list[tuple[str, Decimal] | None] = [None] * len(rows)
    if any(prefix for _, prefix, _ in keys):
        for resolver in _resolvers:
            found = resolver(keys)
    for row, match in zip(rows, found, strict=True):
        row["paid_by"] = _paid_by(row)
        row["destination"] = match[0] if match else None
        # Bundle minutes cost nothing: only a call charged from credit shows its rate.
        charged = row["paid_by"] in (PaidBy.CREDIT, PaidBy.BUNDLE_AND_CREDIT)
        row["rate_per_minute"] = match[1] if match and charged else None
        row["currency"] = row["currency"] or currency
        row["bundle_minutes"] = row["bundle_minutes"] or 0
        row["note"] = row["note"] or ""
    return rows


def calls_in_chunks(queryset: QuerySet[Any], *, currency: str, chunk: int = 2000) -> Iterator[dict[str, Any]]:
    """Every row of `queryset` described, read from a server-side cursor `chunk` rows at a
    time, so a month of calls is never in memory at once (the CSV downloads)."""
    rows: Iterable[dict[str, Any]] = queryset.iterator(chunk_size=chunk)
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk)):
        yield from calls_describe(batch, currency=currency)
