"""Reads about money: balances, allocation history, statements."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.companies.models import Company


def company_balance(company: Company) -> Decimal:
    account = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.COMPANY_BALANCE, company=company).first()
    return account.balance if account is not None else Decimal("0")


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
