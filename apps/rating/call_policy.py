"""What the SIP edge needs to decide at call time, per SIP profile.

- Paid outbound calls: the profile is active, not deleted, and its balance is above zero
  (ARCHITECTURE "Money": the edge refuses new paid calls on a balance that is not positive;
  only rating takes a balance below zero, after the call).
- US bundle calls: outbound calls to US landlines and mobiles may go through on bundle
  minutes even at a zero or negative balance, while the current bundle period has minutes
  left and is not suspended (an unpaid bundle's minutes cannot be used). Which numbers are
  US landlines and mobiles is the rate deck's answer (apps.rating.selectors), not this one's.
- Inbound calls: the profile is active and not deleted. They never depend on the balance.

`call_policies` answers for many profiles in two queries whatever their number, so that the
edge sync can push the policy of every profile at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps.bundles.models import BundlePeriod
from apps.core.money import format_money
from apps.sip_profiles.models import SipProfile

ZERO = Decimal("0.0000")


class Refusal:
    """Why paid outbound calls are refused (machine-readable; `reason` says it to a person)."""

    NONE = ""
    DELETED = "deleted"
    SUSPENDED = "suspended"
    SUSPENDED_FOR_BILLING = "suspended_for_billing"
    NO_BALANCE = "no_balance"


@dataclass(frozen=True)
class CallPolicy:
    profile_id: int
    public_id: uuid.UUID
    paid_calls_allowed: bool
    bundle_calls_allowed: bool
    inbound_calls_allowed: bool
    balance: Decimal
    currency: str
    bundle_minutes_left: int
    bundle_period_end: datetime | None
    bundle_suspended: bool
    refusal: str
    reason: str
    checked_at: datetime


@dataclass(frozen=True)
class _Bundle:
    minutes_left: int
    period_end: datetime | None
    suspended: bool


_NO_BUNDLE = _Bundle(minutes_left=0, period_end=None, suspended=False)


def call_policy(profile: SipProfile, *, now: datetime | None = None) -> CallPolicy:
    """The call policy of one profile, read fresh from the database (the balance and bundle
    minutes change with every rated call, so the instance's cached values are not trusted)."""
    return call_policies([profile.pk], now=now)[profile.pk]


def call_policies(profile_ids: Iterable[int], *, now: datetime | None = None) -> dict[int, CallPolicy]:
    """The call policy of each profile, by profile id; ids of no profile are left out.

    Query 1: the profiles, their company's currency and their balance (a profile that was
    never given credit has no ledger account: its balance is zero).
    Query 2: the bundle periods in force at `now`.
    """
    now = now or timezone.now()
    ids = list(set(profile_ids))
    if not ids:
        return {}
    rows = SipProfile.objects.filter(pk__in=ids).values_list(
        "pk",
        "public_id",
        "status",
        "suspended_for_billing",
        "deleted_at",
        "company__currency",
        "ledger_account__balance",
    )
    bundles: dict[int, _Bundle] = {}
    periods = (
        BundlePeriod.objects.filter(sip_profile_id__in=ids, period_start__lte=now, period_end__gt=now)
        # Periods of a profile do not overlap; if they ever did, the earliest one is the one
        # rating uses (apps.rating.engine._period_of), so it is the one reported.
        .order_by("sip_profile_id", "period_start")
        .values_list("sip_profile_id", "minutes_included", "minutes_used", "suspended", "period_end")
    )
    for profile_id, included, used, suspended, period_end in periods:
        if profile_id in bundles:
            continue
        left = 0 if suspended else max(included - used, 0)
        bundles[profile_id] = _Bundle(minutes_left=left, period_end=period_end, suspended=suspended)
    return {
        pk: _decide(
            profile_id=pk,
            public_id=public_id,
            status=status,
            suspended_for_billing=suspended_for_billing,
            deleted=deleted_at is not None,
            currency=currency,
            balance=ZERO if balance is None else balance,
            bundle=bundles.get(pk, _NO_BUNDLE),
            now=now,
        )
        for pk, public_id, status, suspended_for_billing, deleted_at, currency, balance in rows
    }


def _decide(
    *,
    profile_id: int,
    public_id: uuid.UUID,
    status: str,
    suspended_for_billing: bool,
    deleted: bool,
    currency: str,
    balance: Decimal,
    bundle: _Bundle,
    now: datetime,
) -> CallPolicy:
    live = not deleted and status == SipProfile.Status.ACTIVE
    paid = live and balance > 0
    on_bundle = live and bundle.minutes_left > 0
    if deleted:
        refusal, reason = Refusal.DELETED, "The SIP profile was deleted: it makes and receives no calls."
    elif status != SipProfile.Status.ACTIVE and suspended_for_billing:
        refusal = Refusal.SUSPENDED_FOR_BILLING
        reason = "The SIP profile is suspended because a charge for it is unpaid: it makes and receives no calls."
    elif status != SipProfile.Status.ACTIVE:
        refusal, reason = Refusal.SUSPENDED, "The SIP profile is suspended: it makes and receives no calls."
    elif not paid:
        refusal = Refusal.NO_BALANCE
        reason = (
            f"The profile balance is {format_money(balance, currency)}: paid outbound calls are refused until "
            "credit is allocated to it."
        )
        if on_bundle:
            reason += (
                f" Calls to US landlines and mobiles still go through on its {bundle.minutes_left} bundle minutes left."
            )
        elif bundle.suspended:
            reason += " Its US bundle minutes cannot be used until the unpaid bundle charge is paid."
    else:
        refusal, reason = Refusal.NONE, ""
    return CallPolicy(
        profile_id=profile_id,
        public_id=public_id,
        paid_calls_allowed=paid,
        bundle_calls_allowed=on_bundle,
        inbound_calls_allowed=live,
        balance=balance,
        currency=currency,
        bundle_minutes_left=bundle.minutes_left,
        bundle_period_end=bundle.period_end,
        bundle_suspended=bundle.suspended,
        refusal=refusal,
        reason=reason,
        checked_at=now,
    )
