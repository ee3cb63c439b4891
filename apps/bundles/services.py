"""US minute bundles: buying, cancelling, renewing, suspending, and telling the company when
a period's minutes run low.

Rules, each written once here and called by the pages, the API, the admin and the tasks:
- A profile holds at most one bundle per channel. The profile row is locked (FOR NO KEY UPDATE)
  while its count changes, and sip_profile_update locks it (FOR UPDATE) to lower channels, so
  racing requests serialise; the CHECK constraint on SipProfile is the last line.
- Buying adds each bundle's prorated minutes, ceil(5,000 × the remaining fraction of the
  period), to the current period and charges the prorated monthly price.
- Cancelling lowers the count that renews; the minutes already given last until the period ends.
  Nothing is refunded.
- On the profile's renewal day the next period starts with count × 5,000 minutes (unused minutes
  expire) and count × the monthly price is charged, once (charge key bundle:<profile>:<period>).
- A bundle charge unpaid after its grace period suspends the period it paid for (rating then
  charges the standard rate) until it is paid (apps.billing.charges.services _suspend/_resume).

Lock order, to stay clear of deadlocks with the rating engine and charge settlement: profile
row, then the company's ledger account (charge_record), then the BundlePeriod row. A period
row that already exists is only written after the charge, with an UPDATE.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone
from django.utils.translation import ngettext

from apps.audit.services import audit_record
from apps.billing.charges.services import charge_record
from apps.billing.models import Charge, Price
from apps.billing.pricing import ProratedPrice, monthly_period, price_for, prorated_price
from apps.billing.quotes import Quote, quote_for_price, quote_make, quote_sum
from apps.bundles.models import MINUTES_PER_BUNDLE, BundlePeriod
from apps.companies.models import Company, Notice
from apps.companies.notices import notice_create
from apps.core.actor import Actor
from apps.core.enqueue import enqueue_on_commit
from apps.core.exceptions import ApplicationError, Conflict
from apps.sip_profiles.models import MAX_CHANNELS, SipProfile
from apps.sip_profiles.services import sip_profile_mark_for_provisioning, sip_profiles_mark_for_provisioning

logger = logging.getLogger(__name__)

ITEM_LABEL = "bundles.bundleperiod"


def period_item(period: BundlePeriod) -> str:
    """The Charge.item of a bundle charge: the period its minutes belong to."""
    return f"{ITEM_LABEL}:{period.pk}"


def prorated_minutes(*, at: datetime, period_start: datetime, period_end: datetime) -> int:
    """One bundle's minutes from `at` to the end of the period: ceil(5,000 × remaining fraction),
    in integer microseconds so that no float rounding can give a minute more or less."""
    one = datetime.resolution
    remaining = (period_end - max(at, period_start)) // one
    whole = (period_end - period_start) // one
    return -(-MINUTES_PER_BUNDLE * remaining // whole)


def _plural(count: int) -> str:
    return ngettext("%(n)d US minute bundle", "%(n)d US minute bundles", count) % {"n": count}


def _count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ApplicationError("The number of bundles is a whole number.", field="count") from None
    if not 1 <= count <= MAX_CHANNELS:
        raise ApplicationError(f"Choose 1 to {MAX_CHANNELS} bundles.", field="count")
    return count


def _locked_profile(profile: SipProfile) -> SipProfile:
    # FOR NO KEY UPDATE: conflicts with sip_profile_update's FOR UPDATE (lowering channels) and
    # with another bundle change, but not with rows inserted that merely reference the profile.
    locked = (
        SipProfile.objects.select_for_update(no_key=True, of=("self",))
        .select_related("company")
        .filter(pk=profile.pk, deleted_at__isnull=True)
        .first()
    )
    if locked is None:
        raise ApplicationError("This SIP profile was deleted.", code="profile_deleted")
    return locked


def _save_count(profile: SipProfile, bundles: int) -> None:
    profile.us_minute_bundles = bundles
    try:
        # A savepoint: if the CHECK (bundles <= channels) refuses the row, the outer
        # transaction stays usable and the caller gets a clear error, not a 500.
        with transaction.atomic():
            profile.save(update_fields=["us_minute_bundles", "updated_at"])
    except IntegrityError:
        raise Conflict(
            "The profile's channels changed at the same moment: there can be no more bundles than channels. "
            "Reload and try again.",
            field="count",
            code="bundles_exceed_channels",
        ) from None


def _renewal(*, actor: Actor, profile: SipProfile, now: datetime) -> BundlePeriod | None:
    """Start the period containing `now` with the profile's bundles, charged in full, unless
    it exists. Call with the profile row locked."""
    period_start, period_end = monthly_period(renewal_day=profile.renewal_day, at=now)
    existing = BundlePeriod.objects.filter(sip_profile=profile, period_start=period_start).first()
    if existing is not None or profile.us_minute_bundles == 0:
        return existing
    count = profile.us_minute_bundles
    company = profile.company
    unit_price = price_for(kind=Price.Kind.US_BUNDLE_MONTHLY, currency=company.currency)
    period = BundlePeriod.objects.create(
        sip_profile=profile,
        company=company,
        period_start=period_start,
        period_end=period_end,
        bundles=count,
        minutes_included=count * MINUTES_PER_BUNDLE,
    )
    charge = charge_record(
        actor=actor,
        company=company,
        kind=Charge.Kind.US_BUNDLE,
        description=f"{_plural(count)} on {profile.name}, {period_start:%d %b} to {period_end:%d %b %Y}",
        quantity=count,
        unit_price=unit_price,
        amount=unit_price * count,
        period_start=period_start,
        period_end=period_end,
        item=period_item(period),
        idempotency_key=f"bundle:{profile.public_id}:{period_start:%Y-%m-%d}",
    )
    audit_record(
        actor=actor,
        action="bundles.renewed",
        company=company,
        target=profile,
        changes={
            "period": {"before": None, "after": f"{period_start:%Y-%m-%d} to {period_end:%Y-%m-%d}"},
            "minutes_included": {"before": None, "after": period.minutes_included},
            "charge": {"before": None, "after": str(charge.public_id)},
        },
    )
    # A new period's minutes: US calls may go through on them again (the edge's `bundle`).
    sip_profile_mark_for_provisioning(profile)
    return period


def _buy_price(*, company: Company, renewal_day: int, count: int, at: datetime) -> ProratedPrice:
    """What `count` bundles bought at `at` cost, prorated to the period's end: the charge and its quote."""
    return prorated_price(
        kind=Price.Kind.US_BUNDLE_MONTHLY, currency=company.currency, renewal_day=renewal_day, count=count, at=at
    )


def _buy_quote(*, company: Company, name: str, renewal_day: int, count: int, at: datetime) -> Quote:
    price = _buy_price(company=company, renewal_day=renewal_day, count=count, at=at)
    return quote_for_price(
        company=company,
        price=price,
        basis="us_bundle",
        description=price.description(counted=_plural(count), name=name, at=at),
    )


def bundles_quote_at_creation(
    *, company: Company, name: str, renewal_day: int, channels: int, us_minute_bundles: int, at: datetime
) -> Quote | None:
    """The price of the bundles asked for at a profile's creation (registered with
    apps.sip_profiles.hooks, as bundles_buy_at_creation is)."""
    if not us_minute_bundles:
        return None
    return _buy_quote(company=company, name=name, renewal_day=renewal_day, count=us_minute_bundles, at=at)


def bundles_buy_quote(*, profile: SipProfile, count: Any, at: datetime | None = None) -> Quote:
    """What bundles_buy charges for `count` more bundles now: their prorated price, and the
    renewal of the bundles already held if this period has not started for them yet. Refuses
    what bundles_buy would refuse."""
    count = _count(count)
    at = at or timezone.now()
    after = profile.us_minute_bundles + count
    if after > profile.channels:
        raise ApplicationError(
            f"{after} US minute bundles need at least {after} channels; {profile.name} has "
            f"{profile.channels}. Add channels first: a profile has at most one bundle per channel.",
            field="count",
            code="bundles_exceed_channels",
        )
    company = profile.company
    parts = []
    period_start, period_end = monthly_period(renewal_day=profile.renewal_day, at=at)
    period = BundlePeriod.objects.filter(sip_profile=profile, period_start=period_start).first()
    if period is not None and period.suspended:
        raise ApplicationError(
            f"The US minute bundles of {profile.name} are suspended for an unpaid charge. Buy credit: the "
            "charge is paid from it and the bundles resume; then buy more.",
            field="count",
            code="bundles_suspended",
        )
    if period is None and profile.us_minute_bundles:
        held = profile.us_minute_bundles
        unit_price = price_for(kind=Price.Kind.US_BUNDLE_MONTHLY, currency=company.currency)
        parts.append(
            quote_make(
                company=company,
                amount=unit_price * held,
                description=f"{_plural(held)} on {profile.name} renewed, {period_start:%d %b} to {period_end:%d %b %Y}",
                period_end=period_end,
                basis=((f"us_bundle_renewal:{period_end:%Y-%m-%d}", held, unit_price),),
            )
        )
    parts.append(_buy_quote(company=company, name=profile.name, renewal_day=profile.renewal_day, count=count, at=at))
    if len(parts) == 1:
        return parts[0]
    return quote_sum(company, *parts, description="; ".join(part.description for part in parts) + ".")


def bundles_cancel_quote(*, profile: SipProfile, count: Any, at: datetime | None = None) -> Quote:
    """What cancelling costs: nothing, and nothing is refunded (the minutes last until the period ends)."""
    count = _count(count)
    held = profile.us_minute_bundles
    if count > held:
        raise ApplicationError(
            f"{profile.name} has {_plural(held)}: you cannot cancel {count}."
            if held
            else f"{profile.name} has no US minute bundles to cancel.",
            field="count",
            code="not_enough_bundles",
        )
    _, period_end = monthly_period(renewal_day=profile.renewal_day, at=at or timezone.now())
    return quote_make(
        company=profile.company,
        amount=Decimal("0"),
        description=f"Cancel {_plural(count)} on {profile.name}: no charge and no refund; this period's minutes "
        f"stay until {period_end:%d %b %Y}, then {_plural(held - count)} renew.",
        period_end=period_end,
        basis=((f"us_bundle_cancel:{period_end:%Y-%m-%d}", count, Decimal("0")),),
    )


def bundles_buy_at_creation(*, actor: Actor, profile: SipProfile, us_minute_bundles: int, now: datetime) -> None:
    """The bundles asked for when a profile is created (registered with apps.sip_profiles.hooks):
    bought in the creating transaction, so an error undoes the creation."""
    if us_minute_bundles:
        bundles_buy(actor=actor, profile=profile, count=us_minute_bundles, now=now)


def bundles_buy(
    *, actor: Actor, profile: SipProfile, count: Any, key: str | None = None, now: datetime | None = None
) -> SipProfile:
    """Buy `count` bundles on the profile: its prorated minutes now, charged prorated.

    `key` makes a retried request (a resubmitted form) buy once: the charge is keyed by it."""
    count = _count(count)
    now = now or timezone.now()
    with transaction.atomic():
        profile = _locked_profile(profile)
        charge_key = f"bundle:{profile.public_id}:buy:{key or uuid.uuid4().hex}"
        if key and Charge.objects.filter(idempotency_key=charge_key).exists():
            return profile  # this purchase was made already
        before = profile.us_minute_bundles
        after = before + count
        if after > profile.channels:
            raise ApplicationError(
                f"{after} US minute bundles need at least {after} channels; {profile.name} has "
                f"{profile.channels}. Add channels first: a profile has at most one bundle per channel.",
                field="count",
                code="bundles_exceed_channels",
            )
        company = profile.company
        # Bundles held since the last period renew first, so that a purchase on the renewal
        # day, before the renewal job, does not stand in for the renewal.
        period = _renewal(actor=actor, profile=profile, now=now)
        price = _buy_price(company=company, renewal_day=profile.renewal_day, count=count, at=now)
        unit_price, period_start, period_end = price.unit_price, price.period_start, price.period_end
        minutes = count * prorated_minutes(at=now, period_start=period_start, period_end=period_end)
        if period is not None and period.suspended:
            # Its minutes, new ones included, could not be used until the unpaid charge is paid.
            raise ApplicationError(
                f"The US minute bundles of {profile.name} are suspended for an unpaid charge. Buy credit: the "
                "charge is paid from it and the bundles resume; then buy more.",
                field="count",
                code="bundles_suspended",
            )
        if period is None:
            period = BundlePeriod.objects.create(
                sip_profile=profile,
                company=company,
                period_start=period_start,
                period_end=period_end,
            )
        _save_count(profile, after)
        charge = charge_record(
            actor=actor,
            company=company,
            kind=Charge.Kind.US_BUNDLE,
            description=price.description(counted=_plural(count), name=profile.name, at=now),
            quantity=count,
            unit_price=unit_price,
            amount=price.amount,
            period_start=now,
            period_end=period_end,
            item=period_item(period),
            idempotency_key=charge_key,
        )
        BundlePeriod.objects.filter(pk=period.pk).update(
            minutes_included=F("minutes_included") + minutes,
            bundles=Greatest(F("bundles"), after),
            updated_at=now,
        )
        # More minutes may take the period back below a threshold it was notified of:
        # the company is told again when it crosses it again.
        for threshold, field in ((80, "notified_80_at"), (100, "notified_100_at")):
            BundlePeriod.objects.filter(
                LessThan(F("minutes_used") * 100, F("minutes_included") * threshold),
                pk=period.pk,
                **{f"{field}__isnull": False},
            ).update(**{field: None})
        sip_profile_mark_for_provisioning(profile)  # more minutes: the edge's `bundle` may turn on
        audit_record(
            actor=actor,
            action="bundles.bought",
            company=company,
            target=profile,
            changes={
                "us_minute_bundles": {"before": before, "after": after},
                "minutes_added": {"before": None, "after": minutes},
                "charge": {"before": None, "after": str(charge.public_id)},
            },
        )
    return profile


def bundles_cancel(*, actor: Actor, profile: SipProfile, count: Any, expected: int | None = None) -> SipProfile:
    """Stop renewing `count` bundles. This period's minutes stay until it ends; no refund.

    `expected`: the bundles held when the request was made (the page sends it); if the count
    has changed since (the same form sent twice, another admin), nothing is cancelled."""
    count = _count(count)
    with transaction.atomic():
        profile = _locked_profile(profile)
        before = profile.us_minute_bundles
        if expected is not None and before != expected:
            raise ApplicationError(
                f"The US minute bundles of {profile.name} changed meanwhile: it now has {_plural(before)}. "
                "Nothing was cancelled; check the count and try again.",
                field="count",
                code="bundles_changed",
            )
        if count > before:
            raise ApplicationError(
                f"{profile.name} has {_plural(before)}: you cannot cancel {count}."
                if before
                else f"{profile.name} has no US minute bundles to cancel.",
                field="count",
                code="not_enough_bundles",
            )
        _save_count(profile, before - count)
        audit_record(
            actor=actor,
            action="bundles.cancelled",
            company=profile.company,
            target=profile,
            changes={"us_minute_bundles": {"before": before, "after": before - count}},
        )
    return profile


def _renew_one(*, pk: int, now: datetime) -> bool:
    with transaction.atomic():
        profile = (
            SipProfile.objects.select_for_update(no_key=True, of=("self",))
            .select_related("company")
            .filter(pk=pk, deleted_at__isnull=True, us_minute_bundles__gt=0)
            .first()
        )
        if profile is None:
            return False
        period_start, _ = monthly_period(renewal_day=profile.renewal_day, at=now)
        if BundlePeriod.objects.filter(sip_profile=profile, period_start=period_start).exists():
            return False
        return _renewal(actor=Actor.system(), profile=profile, now=now) is not None


def bundles_renew(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Start the new period of every live profile holding bundles whose period began and has
    no row yet. Safe to run any number of times: the period row is unique and the charge key
    names the period."""
    now = now or timezone.now()
    counts = {"renewed": 0, "failed": 0}
    current = BundlePeriod.objects.filter(period_start__lte=now, period_end__gt=now)
    ids = list(
        SipProfile.objects.filter(deleted_at__isnull=True, us_minute_bundles__gt=0)
        .exclude(pk__in=current.values("sip_profile_id"))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        try:
            if _renew_one(pk=pk, now=now):
                counts["renewed"] += 1
        except (DatabaseError, ApplicationError):
            logger.exception("The US minute bundles of SIP profile %s could not be renewed", pk)
            counts["failed"] += 1
    return counts


# --- Suspension, called by apps.billing.charges.services for unpaid bundle charges ---------


def bundle_period_suspend(*, actor: Actor, period: BundlePeriod) -> None:
    """Call with the period row locked."""
    if period.suspended:
        return
    period.suspended = True
    period.save(update_fields=["suspended", "updated_at"])
    sip_profiles_mark_for_provisioning(profile_ids=[period.sip_profile_id])  # its minutes no longer count
    audit_record(
        actor=actor,
        action="bundles.suspended_unpaid",
        company=period.company,
        target=period.sip_profile,
        changes={"suspended": {"before": False, "after": True}, "period": str(period.period_start.date())},
    )


def bundle_period_resume(*, actor: Actor, period: BundlePeriod, paid: Charge) -> None:
    """The charge was paid: the period's minutes count again unless another of its charges is
    still suspended. Call with the period row locked."""
    if not period.suspended:
        return
    still_owed = Charge.objects.filter(item=paid.item, status=Charge.Status.SUSPENDED).exclude(pk=paid.pk)
    if still_owed.exists():
        return
    period.suspended = False
    period.save(update_fields=["suspended", "updated_at"])
    sip_profiles_mark_for_provisioning(profile_ids=[period.sip_profile_id])  # its minutes count again
    audit_record(
        actor=actor,
        action="bundles.resumed",
        company=period.company,
        target=period.sip_profile,
        changes={"suspended": {"before": True, "after": False}, "period": str(period.period_start.date())},
    )


# --- Notices at 80% and 100% ------------------------------------------------------


@dataclass(frozen=True)
class _Threshold:
    percent: int
    field: str
    level: str


THRESHOLDS = (
    # 100% first: a batch that takes a period from below 80% to 100% sends one notice, not two.
    _Threshold(100, "notified_100_at", Notice.Level.WARNING),
    _Threshold(80, "notified_80_at", Notice.Level.INFO),
)


def _reached(periods: QuerySet[BundlePeriod], threshold: _Threshold) -> QuerySet[BundlePeriod]:
    """Periods at or past the threshold (whole-number percentages) and not yet notified of it."""
    return periods.filter(
        GreaterThanOrEqual(F("minutes_used") * 100, F("minutes_included") * threshold.percent),
        minutes_included__gt=0,
        **{f"{threshold.field}__isnull": True},
    )


def _notify(*, pk: int, threshold: _Threshold, now: datetime) -> bool:
    with transaction.atomic():
        updates: dict[str, Any] = {threshold.field: now}
        if threshold.percent == 100:
            updates["notified_80_at"] = Coalesce(F("notified_80_at"), now)
        # The conditional UPDATE is the claim: of any number of concurrent callers, one
        # changes the row (the others wait for its lock, then find the field set).
        claimed = _reached(BundlePeriod.objects.filter(pk=pk), threshold).update(**updates)
        if not claimed:
            return False
        period = BundlePeriod.objects.select_related("sip_profile", "company").get(pk=pk)
        name = period.sip_profile.name
        if threshold.percent == 100:
            message = (
                f"{name} has used all {period.minutes_included:,} US bundle minutes of this period "
                f"(until {period.period_end:%d %b %Y}). Calls to the US are now charged at the standard rate "
                "from the profile's credit."
            )
        else:
            message = (
                f"{name} has used {period.percent_used}% of its US bundle minutes: {period.minutes_left:,} "
                f"of {period.minutes_included:,} are left until {period.period_end:%d %b %Y}."
            )
        notice_create(
            company=period.company,
            kind=f"bundle_minutes_{threshold.percent}",
            subject=f"{name} has used {threshold.percent}% of its US bundle minutes",
            level=threshold.level,
            message=message,
        )
    return True


def bundle_periods_notify(period_ids: Collection[int], *, now: datetime | None = None) -> int:
    """Tell the company once for each of these periods that passed 80% or reached 100% of its
    minutes. Returns the number of notices."""
    ids = sorted(set(period_ids))
    if not ids:
        return 0
    now = now or timezone.now()
    sent = 0
    for threshold in THRESHOLDS:
        # One cheap read per threshold: nearly always no period is due.
        due = list(
            _reached(BundlePeriod.objects.filter(pk__any=ids), threshold).order_by("pk").values_list("pk", flat=True)
        )
        for pk in due:
            sent += _notify(pk=pk, threshold=threshold, now=now)
    return sent


def bundle_periods_used(period_ids: Collection[int]) -> None:
    """Rating used minutes of these bundle periods: after commit, tell the company once when a
    period passes 80% and 100% of its minutes."""
    ids = sorted(set(period_ids))
    if not ids:
        return

    # Lazy: apps.bundles.tasks imports this module (import cycle).
    from apps.bundles.tasks import notify_bundle_periods

    enqueue_on_commit(notify_bundle_periods, ids, robust=True)
