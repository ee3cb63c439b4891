"""The rules company and profile auto-recharge share: the calendar month of the monthly limit,
a new threshold crossing (the ledger watermark), and checking and saving the settings."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.audit.services import audit_record
from apps.billing.models import AutoRecharge, LedgerEntry, ProfileAutoRecharge
from apps.billing.money import CENTS, clean_amount
from apps.companies.models import Company
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError

SYSTEM = Actor.system()
ZERO = Decimal("0")


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def _collect(errors: dict[str, list[str]], field: str, check: Any) -> Any:
    try:
        return check()
    except ApplicationError as error:
        errors.setdefault(field, []).extend(error.errors.get(field) or [error.message])
        return None


def settings_errors_raise(errors: dict[str, list[str]]) -> None:
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first if len(errors) == 1 else "Some fields are not valid.", errors=errors)


def last_entry_id(account_id: int) -> int:
    return LedgerEntry.objects.filter(account_id=account_id).aggregate(last=Max("id"))["last"] or 0


def crossed(*, account_id: int, threshold: Decimal, last_watermark: int | None) -> bool:
    """Was the balance at or above the threshold after the last charge was claimed?"""
    if last_watermark is None:
        return True
    return LedgerEntry.objects.filter(
        account_id=account_id, id__gt=last_watermark, balance_after__gte=threshold
    ).exists()


def settings_values(
    errors: dict[str, list[str]], *, amount: Any, threshold: Any, monthly_limit: Any
) -> tuple[Any, Any, Any]:
    """Amount (checked by the `amount` callable), threshold and monthly limit of auto-recharge
    settings; what is wrong is collected in `errors`."""
    amount_value = _collect(errors, "amount", amount)
    threshold_value = _collect(
        errors,
        "threshold",
        lambda: clean_amount(threshold, field="threshold", quantum=CENTS, allow_zero=True).quantize(CENTS),
    )
    limit_value = _collect(
        errors,
        "monthly_limit",
        lambda: clean_amount(monthly_limit, field="monthly_limit", quantum=CENTS).quantize(CENTS),
    )
    if amount_value is not None and limit_value is not None and limit_value < amount_value:
        errors.setdefault("monthly_limit", []).append("The monthly limit must be at least the recharge amount.")
    return amount_value, threshold_value, limit_value


def settings_save(
    *,
    actor: Actor,
    auto: AutoRecharge | ProfileAutoRecharge,
    before: dict[str, Any] | None,
    enabled: bool,
    values: tuple[Any, Any, Any],
    now: datetime,
    action: str,
    company: Company,
    target: Any,
) -> None:
    """Save (and re-arm) auto-recharge settings, with their audit event. Turning it on again
    clears the failures. Call inside a transaction, the row locked."""
    if enabled and not auto.enabled:
        auto.consecutive_failures = 0
    auto.enabled = bool(enabled)
    auto.amount, auto.threshold, auto.monthly_limit = values
    auto.armed_at = now
    try:
        with transaction.atomic():
            auto.save()
    except IntegrityError:
        raise ApplicationError("The settings were changed at the same moment. Please try again.") from None
    after = settings_snapshot(auto) or {}
    audit_record(
        actor=actor,
        action=action,
        company=company,
        target=target,
        changes={k: {"before": (before or {}).get(k), "after": v} for k, v in after.items()},
    )


def settings_snapshot(auto: AutoRecharge | ProfileAutoRecharge | None) -> dict[str, Any] | None:
    if auto is None:
        return None
    snapshot: dict[str, Any] = {
        "enabled": auto.enabled,
        "amount": str(auto.amount),
        "threshold": str(auto.threshold),
        "monthly_limit": str(auto.monthly_limit),
    }
    if isinstance(auto, AutoRecharge):
        snapshot["payment_method"] = str(auto.payment_method) if auto.payment_method else "default card"
    return snapshot
