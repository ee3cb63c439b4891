"""Low-balance notices: a company hears once when a SIP profile's balance falls below its
low-balance threshold, and once when it reaches zero (paid outbound calls stop there:
apps.rating.call_policy). Each notice is re-armed when the balance is back above.

The threshold of a profile is its auto-recharge threshold when auto-recharge is on (falling
below it means the recharge did not happen: the monthly limit, an empty company balance),
else DEFAULT_THRESHOLD in the company's currency. Profiles never given credit (no ledger
account) and deleted profiles are not watched.

A notice is a dashboard notice (owners and admins also get it by e-mail, apps.companies.notices)
plus an e-mail to billing members, who are the ones who allocate credit.

Safe to run twice at once: a notice is claimed by a conditional UPDATE of the profile's
ProfileBalanceAlert row (the notified time goes from null to now) and created in the same
transaction, so only the run whose UPDATE changed the row sends it; a run killed before
its commit sent nothing and claimed nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Case, DecimalField, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from apps.billing.models import LedgerAccount, ProfileBalanceAlert
from apps.companies.models import Notice
from apps.companies.notices import notice_create
from apps.core.enqueue import enqueue_on_commit
from apps.core.money import format_money
from apps.rating.call_policy import call_policy

logger = logging.getLogger(__name__)

# About the price of a few hours of calls; the same figure in USD, EUR and GBP.
DEFAULT_THRESHOLD = Decimal("5.0000")
BATCH = 200
# The most notices (of each kind) and re-arms one run handles; the next run goes on.
LIMIT = 5000

LOW = "profile_balance_low"
EMPTY = "profile_balance_empty"


def _watched() -> QuerySet[LedgerAccount]:
    threshold = Case(
        When(sip_profile__auto_recharge__enabled=True, then=F("sip_profile__auto_recharge__threshold")),
        default=Value(DEFAULT_THRESHOLD),
        output_field=DecimalField(max_digits=14, decimal_places=4),
    )
    return LedgerAccount.objects.filter(
        kind=LedgerAccount.Kind.PROFILE_BALANCE, sip_profile__deleted_at__isnull=True
    ).annotate(threshold=threshold)


def low_balance_notices_send(*, now: datetime, batch_size: int = BATCH, limit: int = LIMIT) -> dict[str, int]:
    """Re-arm the notices of balances back above, then send the notices that are due."""
    counts = {"rearmed": _rearm(batch_size=batch_size, limit=limit), "low": 0, "empty": 0}
    watched = _watched()
    due = {
        EMPTY: watched.filter(balance__lte=0, sip_profile__balance_alert__empty_notified_at__isnull=True),
        LOW: watched.filter(
            balance__gt=0, balance__lt=F("threshold"), sip_profile__balance_alert__low_notified_at__isnull=True
        ),
    }
    for kind, queryset in due.items():
        # Keyset batches by account id: a profile whose notice failed is not picked up again
        # by this run (the next one retries it).
        seen, after = 0, 0
        while seen < limit:
            rows = list(
                queryset.filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", "sip_profile_id", "company_id")[: min(batch_size, limit - seen)]
            )
            if not rows:
                break
            seen, after = seen + len(rows), rows[-1][0]
            ProfileBalanceAlert.objects.bulk_create(
                [
                    ProfileBalanceAlert(sip_profile_id=profile_id, company_id=company_id)
                    for _, profile_id, company_id in rows
                ],
                ignore_conflicts=True,
            )
            for _, profile_id, _ in rows:
                try:
                    counts[kind.removeprefix("profile_balance_")] += _notify(profile_id=profile_id, kind=kind, now=now)
                except Exception:  # one profile's problem must not stop the others
                    logger.exception("Low-balance notice of SIP profile %s failed", profile_id)
    return counts


def _rearm(*, batch_size: int, limit: int) -> int:
    """Clear the notified times of balances back above zero (empty) or the threshold (low).
    Clearing is idempotent: a second run at once finds nothing more to clear."""
    watched = _watched()
    rules = (
        ({"empty_notified_at": None}, Q(empty_notified_at__isnull=False), watched.filter(balance__gt=0)),
        ({"low_notified_at": None}, Q(low_notified_at__isnull=False), watched.filter(balance__gte=F("threshold"))),
    )
    rearmed = 0
    for values, notified, above in rules:
        cleared = 0
        while cleared < limit:
            ids = list(
                ProfileBalanceAlert.objects.filter(notified, sip_profile_id__in=above.values("sip_profile_id"))
                .order_by("pk")
                .values_list("pk", flat=True)[: min(batch_size, limit - cleared)]
            )
            if not ids:
                break
            cleared += ProfileBalanceAlert.objects.filter(notified, pk__in=ids).update(**values)
        rearmed += cleared
    return rearmed


def _notify(*, profile_id: int, kind: str, now: datetime) -> bool:
    """Claim and send one notice. False when it is no longer due or another run sent it."""
    with transaction.atomic():
        account = _watched().select_related("sip_profile", "company").filter(sip_profile_id=profile_id).first()
        if account is None:
            return False
        balance, threshold = account.balance, account.threshold  # type: ignore[attr-defined]
        still_due = balance <= 0 if kind == EMPTY else 0 < balance < threshold
        if not still_due:
            return False  # the balance changed since it was selected: nothing to tell
        # Only the row's own columns in the WHERE: PostgreSQL re-checks them after waiting for
        # a concurrent run's UPDATE of the row, so exactly one of the two claims it.
        alert = ProfileBalanceAlert.objects.filter(sip_profile_id=profile_id)
        if kind == EMPTY:
            # Empty also counts as low: when it is recharged to below the threshold, no low notice.
            claimed = alert.filter(empty_notified_at__isnull=True).update(
                empty_notified_at=now, low_notified_at=Coalesce(F("low_notified_at"), Value(now))
            )
        else:
            claimed = alert.filter(low_notified_at__isnull=True).update(low_notified_at=now)
        if not claimed:
            return False
        profile, currency = account.sip_profile, account.currency
        assert profile is not None
        assert account.company is not None
        if kind == EMPTY:
            policy = call_policy(profile, now=now)
            message = (
                f"SIP profile “{profile.name}” has no credit left ({format_money(balance, currency)}): "
                "its paid outbound calls are refused until you allocate credit to it."
            )
            if policy.bundle_calls_allowed:
                left = policy.bundle_minutes_left
                message += f" Calls to US landlines and mobiles still use its {left} bundle minutes left."
            if policy.inbound_calls_allowed:
                message += " Inbound calls are not affected."
            level = Notice.Level.ERROR
        else:
            message = (
                f"SIP profile “{profile.name}” has {format_money(balance, currency)} left, "
                f"below {format_money(threshold, currency)}. "
                "Allocate credit to it before it runs out: paid outbound calls stop at zero."
            )
            level = Notice.Level.WARNING
        subject = (
            f"SIP profile {profile.name} has no credit left"
            if kind == EMPTY
            else f"SIP profile {profile.name} has {format_money(balance, currency)} left"
        )
        notice = notice_create(company=account.company, kind=kind, subject=subject, message=message, level=level)
        # Lazy: apps.rating.tasks imports this module (import cycle).
        from apps.rating.tasks import send_low_balance_email

        notice_id = notice.pk
        enqueue_on_commit(send_low_balance_email, notice_id)  # the notice is the record; the e-mail best effort
    return True
