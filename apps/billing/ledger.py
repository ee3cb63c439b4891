"""The double-entry ledger: the only code that moves money or changes a cached balance.

Guarantees, and what enforces each:
- every transaction has two or more entries in one currency that sum to zero: checked here,
  and by deferred constraint triggers in PostgreSQL at commit (migration 0004);
- entries and transactions are never changed or deleted: triggers refuse UPDATE and DELETE;
- one transaction per source event: a unique idempotency key; a retry finds it and returns it;
- cached balances equal the sum of their entries: updated here with F() on rows locked with
  SELECT ... FOR UPDATE, in the same database transaction as the entries;
- a company balance never goes below zero: checked here under the lock, and a CHECK constraint.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

PLACES = Decimal("0.0001")


class InsufficientFunds(ApplicationError):
    default_code = "insufficient_funds"


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: Decimal


def _get_or_create(**lookup: object) -> LedgerAccount:
    account = LedgerAccount.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:  # created by a concurrent request a moment ago
        return LedgerAccount.objects.get(**lookup)


def company_account(company: Company) -> LedgerAccount:
    return _get_or_create(kind=LedgerAccount.Kind.COMPANY_BALANCE, company=company, currency=company.currency)


def profile_account(profile: object) -> LedgerAccount:
    company = profile.company  # type: ignore[attr-defined]
    return _get_or_create(
        kind=LedgerAccount.Kind.PROFILE_BALANCE, company=company, sip_profile=profile, currency=company.currency
    )


def platform_account(kind: str, currency: str) -> LedgerAccount:
    return _get_or_create(kind=kind, company=None, currency=currency)


def ledger_post(
    *,
    actor: Actor,
    key: str,
    kind: str,
    company: Company | None,
    currency: str,
    description: str,
    legs: Sequence[Leg],
    may_go_negative: Collection[int] = (),
) -> tuple[LedgerTransaction, bool]:
    """Post one balanced transaction, once per key. Returns (transaction, created).

    Customer balances may not go below zero, except accounts listed in `may_go_negative`
    (a call is rated after it happened, so rating may overdraw a profile). A company balance
    never goes negative whatever is passed."""
    if len(legs) < 2:
        raise ValueError("A ledger transaction needs two or more entries.")
    amounts = [leg.amount.quantize(PLACES) for leg in legs]
    if sum(amounts) != 0 or any(amount == 0 for amount in amounts):
        raise ValueError(f"Unbalanced or empty entries for {key}: {amounts}")
    if any(leg.account.currency != currency for leg in legs):
        raise ValueError(f"Every entry of {key} must be in {currency}.")
    existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            # Lock in id order, so two transactions touching the same accounts cannot deadlock.
            ids = sorted({leg.account.pk for leg in legs})
            locked = {a.pk: a for a in LedgerAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
            change: dict[int, Decimal] = {}
            for leg, amount in zip(legs, amounts, strict=True):
                change[leg.account.pk] = change.get(leg.account.pk, Decimal("0")) + amount
            for pk, delta in change.items():
                account = locked[pk]
                after = account.balance + delta
                overdraws = delta < 0 and after < 0 and account.kind in LedgerAccount.CUSTOMER_KINDS
                if overdraws and (account.kind == LedgerAccount.Kind.COMPANY_BALANCE or pk not in may_go_negative):
                    raise InsufficientFunds(
                        f"Not enough credit: {account.get_kind_display().lower()} is "
                        f"{account.balance:.2f} {account.currency}, this needs {-delta:.2f}.",
                        field="amount",
                    )
            txn = LedgerTransaction.objects.create(
                kind=kind,
                company=company,
                currency=currency,
                description=description[:200],
                idempotency_key=key,
                actor_label=actor.label[:200],
            )
            running = {pk: locked[pk].balance for pk in locked}
            entries = []
            for leg, amount in zip(legs, amounts, strict=True):
                running[leg.account.pk] += amount
                entries.append(
                    LedgerEntry(
                        transaction=txn, account=leg.account, amount=amount, balance_after=running[leg.account.pk]
                    )
                )
            LedgerEntry.objects.bulk_create(entries)
            for pk, delta in change.items():
                LedgerAccount.objects.filter(pk=pk).update(balance=F("balance") + delta)
    except IntegrityError:
        # The same key, posted by a concurrent retry that committed first.
        existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return existing, False
    return txn, True
