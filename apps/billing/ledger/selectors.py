"""Reads about money: balances, allocation history, statements."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, DecimalField, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.companies.models import Company


def company_balance(company: Company) -> Decimal:
    account = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.COMPANY_BALANCE, company=company).first()
    return account.balance if account is not None else Decimal("0")


def balances(company: Company) -> tuple[Decimal, dict[int, Decimal]]:
    """The company balance and each SIP profile's balance by profile id (profiles without an
    account hold nothing). Queries: 1."""
    company_total, by_profile = Decimal("0"), {}
    rows = LedgerAccount.objects.filter(
        kind__in=[LedgerAccount.Kind.COMPANY_BALANCE, LedgerAccount.Kind.PROFILE_BALANCE], company=company
    ).values_list("kind", "sip_profile_id", "balance")
    for kind, profile_id, balance in rows:
        if kind == LedgerAccount.Kind.COMPANY_BALANCE:
            company_total = balance
        else:
            by_profile[profile_id] = balance
    return company_total, by_profile


def profile_balances(company: Company) -> dict[int, Decimal]:
    """Balance by SIP profile id (profiles without an account hold nothing)."""
    return dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROFILE_BALANCE, company=company).values_list(
            "sip_profile_id", "balance"
        )
    )


def allocation_history(*, company: Company, profile: Any = None) -> QuerySet[LedgerEntry]:
    """Allocations and take-backs, as entries on the profile balances."""
    entries = LedgerEntry.objects.filter(
        account__company=company,
        account__kind=LedgerAccount.Kind.PROFILE_BALANCE,
        transaction__kind__in=[LedgerTransaction.Kind.ALLOCATION, LedgerTransaction.Kind.TAKE_BACK],
    )
    if profile is not None:
        entries = entries.filter(account__sip_profile=profile)
    return entries.select_related("transaction", "account__sip_profile").order_by("-id")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-11' → [1 Nov 2026 00:00 UTC, 1 Dec 2026 00:00 UTC). ValueError when malformed."""
    start = date.fromisoformat(f"{month}-01")
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    tz = timezone.get_current_timezone()
    return datetime.combine(start, time.min, tz), datetime.combine(end, time.min, tz)


def statement(*, company: Company, profile: Any = None) -> QuerySet[LedgerEntry]:
    """Entries of the company balance (or of one profile's balance), newest first."""
    entries = LedgerEntry.objects.filter(account__company=company)
    if profile is None:
        entries = entries.filter(account__kind=LedgerAccount.Kind.COMPANY_BALANCE)
    else:
        entries = entries.filter(account__sip_profile=profile)
    return entries.select_related("transaction").order_by("-id")


def statement_entries(*, company: Company) -> QuerySet[LedgerEntry]:
    """Entries of every account of the company, newest first: the statement's list before its
    filters (apps.billing.ledger.filters) choose the balance, month and kind."""
    return LedgerEntry.objects.filter(account__company=company).select_related("transaction").order_by("-id")


STATEMENT_VALUES = (
    "id",
    "created_at",
    "amount",
    "balance_after",
    "transaction__public_id",
    "transaction__kind",
    "transaction__description",
)


def statement_values(entries: QuerySet[LedgerEntry]) -> QuerySet[Any]:
    """The statement's entries (statement_entries, filtered) as dicts of what the API shows."""
    return entries.values(*STATEMENT_VALUES)


# What the customer spent: calls rated from its profile balances and recurring charges paid
# from its company balance (channels, bundles, numbers). Allocations move money between its own
# balances and purchases and refunds bring it in or send it back: neither is spending.
SPENDING_KINDS = (LedgerTransaction.Kind.CALL, LedgerTransaction.Kind.CHARGE)


@dataclass(frozen=True)
class Spend:
    currency: str
    today: Decimal
    this_month: Decimal
    last_month: Decimal
    # Last month from its first day to the same day and time as now: this month's fair comparison.
    last_month_to_date: Decimal


def _month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def company_spend(*, company: Company, now: datetime | None = None) -> Spend:
    """Spend today, this month and last month, net of any credit given back by a charge or a
    call (an entry's amount is negative when money leaves the customer). Days and months are
    the site's time zone's. Queries: 1, whatever the number of profiles and entries."""
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    this_month = _month_start(now)
    last_month = _month_start(this_month - timedelta(days=1))
    # The same day and time last month; a shorter month ends first (31 March → 28 February).
    day = min(now.day, calendar.monthrange(last_month.year, last_month.month)[1])
    same_moment_last_month = now.replace(year=last_month.year, month=last_month.month, day=day)

    def spent(*conditions: Q) -> Sum:
        return Sum("amount", filter=Q(*conditions), default=Decimal("0"))

    figures = LedgerEntry.objects.filter(
        account__company=company,
        account__kind__in=LedgerAccount.CUSTOMER_KINDS,
        transaction__kind__in=SPENDING_KINDS,
        created_at__gte=last_month,
    ).aggregate(
        today=spent(Q(created_at__gte=today)),
        this_month=spent(Q(created_at__gte=this_month)),
        last_month=spent(Q(created_at__lt=this_month)),
        last_month_to_date=spent(Q(created_at__lt=same_moment_last_month)),
    )
    return Spend(currency=company.currency, **{name: -value for name, value in figures.items()})


@dataclass(frozen=True)
class ProfileBalance:
    balance: Decimal
    # Below it the balance is low: the profile's auto-recharge threshold when that is on (it
    # should have been recharged), else the default the low-balance notices use.
    threshold: Decimal

    @property
    def empty(self) -> bool:
        return self.balance <= 0

    @property
    def low(self) -> bool:
        return 0 < self.balance < self.threshold


def profile_balance_states(*, company: Company, default_threshold: Decimal) -> dict[int, ProfileBalance]:
    """Each profile's balance and low-balance threshold, by profile id (profiles never given
    credit have no account and are absent). Queries: 1."""
    threshold = Case(
        When(sip_profile__auto_recharge__enabled=True, then=F("sip_profile__auto_recharge__threshold")),
        default=Value(default_threshold),
        output_field=DecimalField(max_digits=14, decimal_places=4),
    )
    rows = (
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROFILE_BALANCE, company=company)
        .annotate(threshold=threshold)
        .values_list("sip_profile_id", "balance", "threshold")
    )
    return {profile_id: ProfileBalance(balance=balance, threshold=limit) for profile_id, balance, limit in rows}


def company_has_bought_credit(*, company: Company) -> bool:
    """Whether credit ever came in (a card, PayPal or bank wire purchase, or staff's adjustment).
    Queries: 1."""
    return LedgerTransaction.objects.filter(
        company=company, kind__in=[LedgerTransaction.Kind.PURCHASE, LedgerTransaction.Kind.ADJUSTMENT]
    ).exists()


@dataclass(frozen=True)
class HistoryLine:
    """One line of a SIP profile's credit history: a ledger entry, or (`calls_day` set) the sum
    of one day's call debits. `balance_after` is the profile's balance after the line, read in
    the history's order (a day's calls line after that day's other entries), so each line's
    balance after is the one before it plus its amount."""

    created_at: datetime
    kind: str
    description: str
    amount: Decimal
    balance_after: Decimal
    calls_day: date | None = None


def profile_credit_history(
    *, profile: Any, month: tuple[datetime, datetime] | None = None, last_days: int | None = None
) -> list[HistoryLine]:
    """A profile's credit history, newest first: every entry on its balance except the calls,
    which are one line per day (the sum of that day's call debits: rating posts one per batch,
    every few seconds). A day ends with the ledger's own balance after its last entry; the lines
    before it in the day are that figure less the amounts after them. `month` ([start, end))
    limits it to the days inside, `last_days` to the latest days with an entry. Queries: 3 (the
    days, their last balances, the other entries of those days)."""
    entries = LedgerEntry.objects.filter(account__sip_profile=profile)
    if month is not None:
        entries = entries.filter(created_at__gte=month[0], created_at__lt=month[1])
    is_call = Q(transaction__kind=LedgerTransaction.Kind.CALL)
    days = list(
        entries.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            last_id=Max("id"),
            calls=Sum("amount", filter=is_call),
            last_call_at=Max("created_at", filter=is_call),
        )
        .order_by("-day")[:last_days]
    )
    if not days:
        return []
    if last_days is not None:
        tz = timezone.get_current_timezone()
        entries = entries.filter(created_at__gte=datetime.combine(days[-1]["day"], time.min, tz))
    closing = dict(LedgerEntry.objects.filter(id__in=[d["last_id"] for d in days]).values_list("id", "balance_after"))
    others: dict[date, list[LedgerEntry]] = {}
    for entry in entries.exclude(is_call).select_related("transaction").order_by("-id"):
        others.setdefault(timezone.localdate(entry.created_at), []).append(entry)
    lines: list[HistoryLine] = []
    for day in days:
        balance = closing[day["last_id"]]
        if day["calls"] is not None:
            lines.append(
                HistoryLine(
                    created_at=day["last_call_at"],
                    kind=LedgerTransaction.Kind.CALL,
                    description=f"Calls of {day['day']:%d %b %Y}",
                    amount=day["calls"],
                    balance_after=balance,
                    calls_day=day["day"],
                )
            )
            balance -= day["calls"]
        for entry in others.get(day["day"], []):
            lines.append(
                HistoryLine(
                    created_at=entry.created_at,
                    kind=entry.transaction.kind,
                    description=entry.transaction.description,
                    amount=entry.amount,
                    balance_after=balance,
                )
            )
            balance -= entry.amount
    return lines
