"""Profile auto-recharge allocates from the company balance (credit_allocate) in one transaction
holding the ProfileAutoRecharge row lock, under a ledger key per crossing (the profile account's
last entry id), with the same crossing and monthly rules; no network call, so no in-flight state.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.audit.services import audit_record
from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.services import InsufficientFunds, company_account, profile_account
from apps.billing.models import LedgerAccount, ProfileAutoRecharge, ProfileRechargeAttempt, RechargeAttempt
from apps.billing.money import CENTS, clean_amount, format_money
from apps.billing.recharge.company import company_recharge_requested
from apps.billing.recharge.rules import (
    SYSTEM,
    ZERO,
    crossed,
    last_entry_id,
    month_of,
    settings_errors_raise,
    settings_save,
    settings_snapshot,
    settings_values,
)
from apps.companies.models import Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

PROFILE_RETRY_AFTER_FAILURE = timedelta(minutes=15)

Trigger = RechargeAttempt.Trigger


def profiles_due(ids: Collection[int] | None = None) -> QuerySet[ProfileAutoRecharge, int]:
    """Ids of the live profiles (of `ids`, or all) whose enabled auto-recharge is due: their
    balance is below its threshold (a profile never given credit has none: zero)."""
    balance = LedgerAccount.objects.filter(sip_profile_id=OuterRef("sip_profile_id")).values("balance")[:1]
    due = ProfileAutoRecharge.objects.filter(enabled=True, sip_profile__deleted_at__isnull=True)
    if ids is not None:
        due = due.filter(sip_profile_id__any=ids)
    return (
        due.annotate(balance=Coalesce(Subquery(balance), Value(ZERO)))
        .filter(balance__lt=F("threshold"))
        .values_list("sip_profile_id", flat=True)
        .order_by("sip_profile_id")
    )


def profile_auto_recharge_update(
    *, actor: Actor, profile: Any, enabled: bool, amount: Any, threshold: Any, monthly_limit: Any
) -> ProfileAutoRecharge:
    """Save a SIP profile's auto-recharge settings (amounts allocated from the company balance)."""
    if profile.deleted_at is not None:
        raise ApplicationError("This SIP profile was deleted.", code="deleted")
    errors: dict[str, list[str]] = {}
    values = settings_values(
        errors,
        amount=lambda: clean_amount(amount, quantum=CENTS).quantize(CENTS),
        threshold=threshold,
        monthly_limit=monthly_limit,
    )
    settings_errors_raise(errors)
    company = profile.company
    with transaction.atomic():
        auto = ProfileAutoRecharge.objects.select_for_update().filter(sip_profile=profile).first()
        before = settings_snapshot(auto)
        if auto is None:
            auto = ProfileAutoRecharge(sip_profile=profile, company=company)
        settings_save(
            actor=actor,
            auto=auto,
            before=before,
            enabled=enabled,
            values=values,
            now=timezone.now(),
            action="profile_auto_recharge.updated",
            company=company,
            target=profile,
        )
    transaction.on_commit(lambda: profile_balance_debited(profile.pk))
    return auto


def profile_month_total(profile: Any, *, month: date) -> Decimal:
    total = ProfileRechargeAttempt.objects.filter(
        sip_profile=profile, month=month, status=ProfileRechargeAttempt.Status.SUCCEEDED
    ).aggregate(total=Sum("amount"))["total"]
    return total or ZERO


def profile_balance_debited(profile_id: int) -> None:
    """A take-back (or a settings change) took or may need credit on this profile: after
    commit, top it up from the company balance if its auto-recharge is due."""
    profiles_balance_debited([profile_id])


def profiles_balance_debited(profile_ids: Collection[int]) -> None:
    """Rating (or a take-back) took credit from these profiles: after commit, one query finds
    the profiles whose enabled auto-recharge is due, and only those are topped up. Safe to call
    often: cheap when nothing is due; a failed top-up is logged and never undoes the debit."""
    ids = sorted(set(profile_ids))
    if not ids:
        return

    def check() -> None:
        for profile_id in profiles_due(ids):
            try:
                profile_recharge_run(profile_id=profile_id, trigger=Trigger.THRESHOLD)
            except Exception:
                logger.exception("Auto-recharge of SIP profile %s failed after a debit", profile_id)

    transaction.on_commit(check, robust=True)


def profile_recharge_run(
    *, profile_id: int, trigger: str, now: datetime | None = None
) -> ProfileRechargeAttempt | None:
    """Allocate the profile's auto-recharge amount if one is due; record a failure when the
    company balance cannot cover it. Returns the attempt recorded, or None."""
    now = now or timezone.now()
    with transaction.atomic():
        auto = (
            ProfileAutoRecharge.objects.select_for_update(of=("self",))
            .select_related("sip_profile", "company")
            .filter(sip_profile_id=profile_id)
            .first()
        )
        if auto is None or not auto.enabled or auto.sip_profile.deleted_at is not None:
            return None
        profile, company = auto.sip_profile, auto.company
        account = profile_account(profile)
        # Both accounts of the allocation locked now, in the ledger's order (by id): the balance
        # read is the balance at commit, and credit_allocate below finds its locks held.
        locked = LedgerAccount.objects.select_for_update().filter(pk__in=[account.pk, company_account(company).pk])
        balances = dict(locked.order_by("pk").values_list("pk", "balance"))
        if balances[account.pk] >= auto.threshold:
            return None
        retry_at = (auto.last_failure_at or now) + PROFILE_RETRY_AFTER_FAILURE
        if auto.consecutive_failures and now < retry_at:
            return None
        month = month_of(now)
        if profile_month_total(profile, month=month) + auto.amount > auto.monthly_limit:
            return None
        charged = ProfileRechargeAttempt.objects.filter(
            sip_profile=profile, status=ProfileRechargeAttempt.Status.SUCCEEDED
        )
        if auto.armed_at is not None:
            charged = charged.filter(created_at__gte=auto.armed_at)
        last = charged.order_by("-created_at", "-id").values_list("ledger_watermark", flat=True).first()
        if not crossed(account_id=account.pk, threshold=auto.threshold, last_watermark=last):
            return None
        watermark = last_entry_id(account.pk)
        fields = {
            "sip_profile": profile,
            "company": company,
            "amount": auto.amount,
            "month": month,
            "trigger": trigger,
            "ledger_watermark": watermark,
        }
        try:
            # One key per crossing: even without the lock above, one crossing allocates once.
            txn, created = credit_allocate(
                actor=SYSTEM, profile=profile, amount=auto.amount, key=f"auto-recharge:{profile.public_id}:{watermark}"
            )
        except InsufficientFunds as error:
            attempt = ProfileRechargeAttempt.objects.create(
                **fields, status=ProfileRechargeAttempt.Status.FAILED, error=error.message[:500]
            )
            auto.consecutive_failures += 1
            auto.last_failure_at = now
            auto.last_failure_message = attempt.error
            auto.save(update_fields=["consecutive_failures", "last_failure_at", "last_failure_message", "updated_at"])
            audit_record(
                actor=SYSTEM,
                action="profile_auto_recharge.failed",
                company=company,
                target=profile,
                changes={"error": {"before": None, "after": attempt.error}},
            )
            if auto.consecutive_failures == 1:  # tell once per run of failures, not every retry
                notice_create(
                    company=company,
                    kind="profile_auto_recharge_failed",
                    subject=f"Auto-recharge of SIP profile {profile.name} could not allocate "
                    f"{format_money(auto.amount, company.currency)}",
                    level=Notice.Level.ERROR,
                    message=(
                        f"Auto-recharge of SIP profile {profile.name} could not allocate "
                        f"{format_money(auto.amount, company.currency)}: {error.message} Buy credit or turn on "
                        "the company auto-recharge."
                    ),
                )
            company_id = company.pk
            transaction.on_commit(
                lambda: company_recharge_requested(company_id=company_id, trigger=Trigger.THRESHOLD), robust=True
            )
            return attempt
        if not created:
            return None
        attempt = ProfileRechargeAttempt.objects.create(
            **fields, status=ProfileRechargeAttempt.Status.SUCCEEDED, ledger_transaction=txn
        )
        if auto.consecutive_failures:
            auto.consecutive_failures = 0
            auto.save(update_fields=["consecutive_failures", "updated_at"])
    return attempt
