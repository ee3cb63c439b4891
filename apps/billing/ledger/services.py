"""The double-entry ledger: the only code that moves money or changes a cached balance.

Guarantees, and what enforces each:
- every transaction has two or more entries in one currency that sum to zero: checked here,
  and in PostgreSQL by a statement-level trigger on the entries (balance and currency, each time
  entries are written) plus a deferred trigger at commit that a transaction has entries
  (migrations 0004, 0008 to 0011);
- entries and transactions are never changed or deleted: triggers refuse UPDATE and DELETE;
- one transaction per source event: a unique idempotency key; a retry finds it and returns it;
- cached balances equal the sum of their entries: updated here with F() on rows locked with
  SELECT ... FOR UPDATE, in the same database transaction as the entries;
- a company balance never goes below zero: checked here under the lock, and a CHECK constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.billing.money import AMOUNT_QUANTUM, format_money
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError


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


def _checked_amounts(key: str, amounts: Sequence[Decimal]) -> list[Decimal]:
    """The amounts of one transaction, to 4 places: two or more, none zero, summing to zero."""
    if len(amounts) < 2:
        raise ValueError(f"A ledger transaction needs two or more entries ({key}).")
    quantized = [amount.quantize(AMOUNT_QUANTUM) for amount in amounts]
    if sum(quantized) != 0 or any(amount == 0 for amount in quantized):
        raise ValueError(f"Unbalanced or empty entries for {key}: {quantized}")
    return quantized


def _refuse_overdraft(
    *, pk: int, kind: str, currency: str, balance: Decimal, delta: Decimal, may_go_negative: Collection[int]
) -> None:
    """A customer balance may not go below zero, unless listed in `may_go_negative` (rating);
    a company balance never. Call with the account locked."""
    overdraws = delta < 0 and balance + delta < 0 and kind in LedgerAccount.CUSTOMER_KINDS
    if overdraws and (kind == LedgerAccount.Kind.COMPANY_BALANCE or pk not in may_go_negative):
        raise InsufficientFunds(
            f"Not enough credit: {LedgerAccount.Kind(kind).label.lower()} is {format_money(balance, currency)}, "
            f"this needs {format_money(-delta)}.",
            field="amount",
        )


# --- A profile balance crossing zero ------------------------------------------------------
# Whether a profile may make paid calls (apps.rating.call_policy) turns on its balance being
# above zero, and the SIP edge must hear of it. Billing knows no product: the product above
# registers a listener, called inside the posting's transaction with the profile ids whose
# balance went from above zero to zero or below, or back (never for a move that keeps the sign,
# so rating a batch of calls marks only the profiles it empties).

_sign_listeners: list[Callable[[list[int]], None]] = []


def profile_balance_sign_listener_register(listener: Callable[[list[int]], None]) -> None:
    if listener not in _sign_listeners:
        _sign_listeners.append(listener)


def _tell_sign_changes(moves: Iterable[tuple[int | None, Decimal, Decimal]]) -> None:
    """moves: (sip profile id or None, balance before, balance after) of each account posted to."""
    flipped = sorted({pid for pid, before, after in moves if pid is not None and (before > 0) != (after > 0)})
    if flipped:
        for listener in _sign_listeners:
            listener(flipped)


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
    amounts = _checked_amounts(key, [leg.amount for leg in legs])
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
                _refuse_overdraft(
                    pk=pk,
                    kind=account.kind,
                    currency=account.currency,
                    balance=account.balance,
                    delta=delta,
                    may_go_negative=may_go_negative,
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
            _tell_sign_changes(
                (locked[pk].sip_profile_id, locked[pk].balance, locked[pk].balance + delta)
                for pk, delta in change.items()
            )
    except IntegrityError:
        # The same key, posted by a concurrent retry that committed first.
        existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        return existing, False
    return txn, True


@dataclass(frozen=True)
class Posting:
    """One transaction of a bulk posting: legs are (account id, amount)."""

    key: str
    company_id: int | None
    currency: str
    description: str
    legs: Sequence[tuple[int, Decimal]]


def _array(values: Iterable[object]) -> str:
    """A PostgreSQL array literal of numbers, sent as one text parameter."""
    return "{" + ",".join(map(str, values)) + "}"


def _copy_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """COPY rows of plain values (ints, Decimals, ASCII text without tabs) into `table` (PostgreSQL)."""
    text = "".join("\t".join(map(str, row)) + "\n" for row in rows)
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        copy.write(text)


def ledger_post_many(
    *, actor: Actor, kind: str, postings: Sequence[Posting], may_go_negative: Collection[int] = ()
) -> dict[str, int]:
    """Post many balanced transactions in a few statements: the rating engine's batches.
    Returns {key: transaction id}.

    The same guarantees as ledger_post: every posting balanced and in its accounts' currency,
    accounts locked FOR UPDATE in id order, balances updated with the entries, balance_after
    on each entry, no customer balance below zero unless listed in `may_go_negative` (never a
    company balance). Must run inside the caller's transaction; a key posted before is an
    IntegrityError (the unique index), so the caller's whole batch rolls back."""
    if not postings:
        return {}
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger_post_many must run inside transaction.atomic().")
    change: dict[int, Decimal] = {}
    # Each posting's legs with their amounts to 4 places.
    legs_of: list[list[tuple[int, Decimal]]] = []
    for posting in postings:
        amounts = _checked_amounts(posting.key, [amount for _, amount in posting.legs])
        legs = [(account_id, amount) for (account_id, _), amount in zip(posting.legs, amounts, strict=True)]
        legs_of.append(legs)
        for account_id, amount in legs:
            change[account_id] = change.get(account_id, Decimal("0")) + amount
    # (kind, currency, balance, sip profile id) of each account, locked in id order.
    accounts = {
        pk: (kind, currency, balance, profile_id)
        for pk, kind, currency, balance, profile_id in LedgerAccount.objects.select_for_update()
        .filter(pk__any=sorted(change))
        .order_by("pk")
        .values_list("pk", "kind", "currency", "balance", "sip_profile_id")
    }
    if len(accounts) != len(change):
        raise ValueError(f"Unknown ledger accounts: {sorted(set(change) - set(accounts))}")
    for posting in postings:
        if any(accounts[account_id][1] != posting.currency for account_id, _ in posting.legs):
            raise ValueError(f"Every entry of {posting.key} must be in {posting.currency}.")
    for pk, delta in change.items():
        account_kind, currency, balance, _ = accounts[pk]
        _refuse_overdraft(
            pk=pk, kind=account_kind, currency=currency, balance=balance, delta=delta, may_go_negative=may_go_negative
        )

    label = actor.label[:200]
    txns = LedgerTransaction.objects.bulk_create(
        [
            LedgerTransaction(
                kind=kind,
                company_id=posting.company_id,
                currency=posting.currency,
                description=posting.description[:200],
                idempotency_key=posting.key,
                actor_label=label,
            )
            for posting in postings
        ]
    )
    running = {pk: account[2] for pk, account in accounts.items()}
    now = timezone.now()
    rows: list[tuple[int, int, Decimal, Decimal]] = []
    for legs, txn in zip(legs_of, txns, strict=True):
        for account_id, amount in legs:
            running[account_id] += amount
            rows.append((txn.pk, account_id, amount, running[account_id]))
    if connection.vendor == "postgresql":
        stamp = now.isoformat()
        _copy_rows(
            LedgerEntry._meta.db_table,
            ("transaction_id", "account_id", "amount", "balance_after", "created_at"),
            [(*row, stamp) for row in rows],
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {LedgerAccount._meta.db_table} a SET balance = a.balance + d.delta, updated_at = %s"  # noqa: S608
                " FROM unnest(%s::bigint[], %s::numeric[]) AS d(id, delta) WHERE a.id = d.id",
                [now, _array(change), _array(change.values())],
            )
    else:
        LedgerEntry.objects.bulk_create(
            [LedgerEntry(transaction_id=t, account_id=a, amount=m, balance_after=b) for t, a, m, b in rows]
        )
        for pk, delta in change.items():
            LedgerAccount.objects.filter(pk=pk).update(balance=F("balance") + delta, updated_at=now)
    _tell_sign_changes((accounts[pk][3], accounts[pk][2], accounts[pk][2] + delta) for pk, delta in change.items())
    return {posting.key: txn.pk for posting, txn in zip(postings, txns, strict=True)}


def profile_accounts(profile_ids: Collection[int]) -> dict[int, int]:
    """{profile id: its balance account id}, creating the missing accounts (in bulk)."""
    # The profile model through the account's foreign key: billing imports no product.
    profiles = LedgerAccount._meta.get_field("sip_profile").related_model._default_manager  # type: ignore[union-attr]

    wanted = set(profile_ids)
    found = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.PROFILE_BALANCE, sip_profile_id__any=wanted).values_list(
            "sip_profile_id", "pk"
        )
    )
    missing = wanted - set(found)
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    kind=LedgerAccount.Kind.PROFILE_BALANCE, company_id=company_id, sip_profile_id=pk, currency=currency
                )
                for pk, company_id, currency in profiles.filter(pk__any=missing).values_list(
                    "pk", "company_id", "company__currency"
                )
            ],
            ignore_conflicts=True,  # created by a concurrent request a moment ago
        )
        found.update(
            LedgerAccount.objects.filter(
                kind=LedgerAccount.Kind.PROFILE_BALANCE, sip_profile_id__any=missing
            ).values_list("sip_profile_id", "pk")
        )
    return found
