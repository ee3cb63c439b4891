"""The periodic auto-recharge sweep: it finishes company recharges whose payment settled or
that were interrupted, and recharges every company and SIP profile below its threshold."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from apps.billing.models import AutoRecharge, CreditPurchase, LedgerAccount, RechargeAttempt
from apps.billing.purchases.services import purchase_settle_off_session
from apps.billing.recharge.company import attempt_recover_unlinked, attempt_settle, company_recharge_run
from apps.billing.recharge.profile import profile_recharge_run, profiles_due
from apps.billing.recharge.rules import ZERO
from apps.core.exceptions import ApplicationError

logger = logging.getLogger(__name__)

# An attempt with no purchase this old was interrupted before Stripe was called.
STALE_AFTER = timedelta(minutes=10)
# A pending purchase untouched this long is settled by the sweep: asked about at Stripe, and
# canceled there if it was never confirmed. Well past the Stripe timeouts of the charge itself.
SYNC_PENDING_AFTER = timedelta(minutes=2)
SWEEP_BATCH = 200

Status = RechargeAttempt.Status
Trigger = RechargeAttempt.Trigger


def auto_recharge_sweep(*, now: datetime) -> dict[str, int]:
    """Periodic: finish in-flight attempts (their purchase settled, or they were interrupted),
    then recharge every company and profile below its threshold that is due."""
    counts = {"settled": 0, "recovered": 0, "companies": 0, "profiles": 0, "errors": 0}
    in_flight = RechargeAttempt.objects.filter(status=Status.IN_FLIGHT).select_related("purchase")
    for attempt in in_flight.order_by("created_at")[:SWEEP_BATCH]:
        try:
            purchase = attempt.purchase
            if purchase is None:
                if attempt.created_at < now - STALE_AFTER:
                    counts["recovered"] += attempt_recover_unlinked(attempt.pk)
                continue
            if purchase.status == CreditPurchase.Status.PENDING and purchase.updated_at < now - SYNC_PENDING_AFTER:
                purchase_settle_off_session(purchase=purchase)  # network calls, outside any transaction
            counts["settled"] += attempt_settle(attempt_id=attempt.pk).status != Status.IN_FLIGHT
        except ApplicationError:
            counts["errors"] += 1
            logger.exception("Could not settle auto-recharge %s", attempt.public_id)

    company_balance = LedgerAccount.objects.filter(
        kind=LedgerAccount.Kind.COMPANY_BALANCE, company_id=OuterRef("company_id")
    ).values("balance")[:1]
    due = (
        AutoRecharge.objects.filter(enabled=True)
        .annotate(balance=Coalesce(Subquery(company_balance), Value(ZERO)))
        .filter(balance__lt=F("threshold"))
        .values_list("company_id", flat=True)
        .order_by("company_id")[:SWEEP_BATCH]
    )
    for company_id in due:
        try:
            made = company_recharge_run(company_id=company_id, trigger=Trigger.SWEEP, now=now)
            counts["companies"] += made is not None
        except Exception:  # one company's problem must not stop the others
            counts["errors"] += 1
            logger.exception("Auto-recharge of company %s failed", company_id)

    for profile_id in profiles_due()[:SWEEP_BATCH]:
        try:
            allocated = profile_recharge_run(profile_id=profile_id, trigger=Trigger.SWEEP, now=now)
            counts["profiles"] += allocated is not None
        except Exception:
            counts["errors"] += 1
            logger.exception("Auto-recharge of SIP profile %s failed", profile_id)
    return counts
