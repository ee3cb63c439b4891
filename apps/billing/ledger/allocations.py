"""Moving credit between a company's balance and its SIP profiles' balances."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.audit.services import audit_record
from apps.billing.ledger.services import Leg, company_account, ledger_post, profile_account
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.billing.money import clean_amount
from apps.billing.recharge.company import company_recharge_requested
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError, Conflict


def profile_balance(profile: Any) -> Decimal:
    account = LedgerAccount.objects.filter(sip_profile=profile).only("balance").first()
    return account.balance if account is not None else Decimal("0")


def _move(*, actor: Actor, profile: Any, amount: Any, key: str, to_profile: bool) -> tuple[LedgerTransaction, bool]:
    amount = clean_amount(amount)
    if profile.deleted_at is not None:
        raise ApplicationError("This SIP profile was deleted.", code="deleted")
    company = profile.company
    source, target = company_account(company), profile_account(profile)
    if not to_profile:
        source, target = target, source
    kind = LedgerTransaction.Kind.ALLOCATION if to_profile else LedgerTransaction.Kind.TAKE_BACK
    verb = "Allocated to" if to_profile else "Taken back from"
    with transaction.atomic():
        txn, created = ledger_post(
            actor=actor,
            key=key,
            kind=kind,
            company=company,
            currency=company.currency,
            description=f"{verb} {profile.name}",
            legs=[Leg(source, -amount), Leg(target, amount)],
        )
        if created:
            audit_record(
                actor=actor,
                action="credit.allocated" if to_profile else "credit.taken_back",
                company=company,
                target=profile,
                changes={"amount": {"before": None, "after": f"{amount} {company.currency}"}},
            )
            _after_move(company_id=company.pk, profile_id=profile.pk, to_profile=to_profile)
    return txn, created


def _after_move(*, company_id: int, profile_id: int, to_profile: bool) -> None:
    """Auto-recharge hooks, run after commit: an allocation debited the company balance, a
    take-back the profile balance. Here rather than in ledger_post, so that a refund (which
    also debits the company balance) never charges the card it is refunding."""
    # Lazy: profile auto-recharge builds on this module (import cycle).
    from apps.billing.recharge.profile import profile_balance_debited

    if to_profile:
        transaction.on_commit(
            lambda: company_recharge_requested(company_id=company_id, trigger="threshold"), robust=True
        )
    else:
        profile_balance_debited(profile_id)


def credit_allocate(*, actor: Actor, profile: Any, amount: Any, key: str) -> tuple[LedgerTransaction, bool]:
    """Company balance → profile balance; never more than the company balance.
    Returns the transaction and whether this call created it (False: the key was used)."""
    return _move(actor=actor, profile=profile, amount=amount, key=f"credit:{key}", to_profile=True)


def credit_take_back(*, actor: Actor, profile: Any, amount: Any, key: str) -> tuple[LedgerTransaction, bool]:
    """Profile balance → company balance; never more than the profile's positive balance."""
    return _move(actor=actor, profile=profile, amount=amount, key=f"credit:{key}", to_profile=False)


def movement_of(txn: LedgerTransaction, profile: Any) -> Decimal | None:
    """How much a transaction moved into (+) or out of (-) this profile's balance, or None."""
    entry = txn.entries.filter(account__sip_profile=profile).first()
    return entry.amount if entry is not None else None


# The ledger key keeps the request's key as it is up to this length (so staff can find a move by
# the key the integrator sent), and a digest of longer ones (ledger keys are at most 150).
_PLAIN_KEY_LENGTH = 100


def credit_move(
    *, actor: Actor, profile: Any, action: str, amount: Any, request_key: str | None
) -> tuple[LedgerTransaction, bool]:
    """Allocate credit to (`allocate`) or take it back from (`take_back`) a profile, once per
    request key: the ledger key is credit:<company>:<request key> (a fresh one without), so a
    move is posted once even if the request's own answer was lost. A key that already moved
    something else (another amount, direction or profile) is a 409 `idempotency_key_reused`."""
    company = profile.company
    if request_key:
        part = (
            request_key if len(request_key) <= _PLAIN_KEY_LENGTH else hashlib.sha256(request_key.encode()).hexdigest()
        )
    else:
        part = str(uuid.uuid4())
    move = credit_allocate if action == "allocate" else credit_take_back
    txn, created = move(actor=actor, profile=profile, amount=amount, key=f"{company.public_id}:{part}")
    if not created:
        kind = LedgerTransaction.Kind.ALLOCATION if action == "allocate" else LedgerTransaction.Kind.TAKE_BACK
        wanted = clean_amount(amount) * (1 if action == "allocate" else -1)
        if txn.kind != kind or movement_of(txn, profile) != wanted:
            raise Conflict(
                "This Idempotency-Key was already used with other parameters.",
                field="Idempotency-Key",
                code="idempotency_key_reused",
            )
    return txn, created
