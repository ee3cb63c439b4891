"""Monthly channel renewals: each live profile is charged the full month for its channels
on its renewal day, once per period."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import ngettext

from apps.billing.charges.items import charge_item_label
from apps.billing.charges.services import charge_record
from apps.billing.models import Charge, Price
from apps.billing.pricing import monthly_period, price_for
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.models import CHARGE_ITEM_LABEL, SipProfile

logger = logging.getLogger(__name__)


def _renew_one(*, pk: int, now: datetime) -> bool:
    with transaction.atomic():
        profile = (
            SipProfile.objects.select_for_update(of=("self",))
            .select_related("company")
            .filter(pk=pk, deleted_at__isnull=True)
            .first()
        )
        if profile is None:
            return False
        period_start, period_end = monthly_period(renewal_day=profile.renewal_day, at=now)
        if period_start <= profile.created_at:
            return False  # the first period was charged, prorated, when the profile was created
        key = f"channels:{profile.public_id}:renewal:{period_start:%Y-%m-%d}"
        if Charge.objects.filter(idempotency_key=key).exists():
            return False
        unit_price = price_for(kind=Price.Kind.CHANNEL_MONTHLY, currency=profile.company.currency)
        charge_record(
            actor=Actor.system(),
            company=profile.company,
            kind=Charge.Kind.CHANNELS,
            description=ngettext("%(n)d channel", "%(n)d channels", profile.channels)
            % {"n": profile.channels}
            + f" on {profile.name}, "
            f"{period_start:%d %b} to {period_end:%d %b %Y}",
            quantity=profile.channels,
            unit_price=unit_price,
            amount=unit_price * profile.channels,
            period_start=period_start,
            period_end=period_end,
            item=charge_item_label(CHARGE_ITEM_LABEL, profile.public_id),
            idempotency_key=key,
        )
        return True


def _due_ids(*, now: datetime, limit: int) -> list[int]:
    """Live profiles whose current monthly period began after they were created and whose
    channels are not charged for it yet, taken renewal day by renewal day (1 to 28), so that
    `limit` bounds the work of a run instead of always taking the same first profiles."""
    ids: list[int] = []
    for day in range(1, 29):
        period_start, _ = monthly_period(renewal_day=day, at=now)
        charged = [
            item.partition(":")[2]
            for item in Charge.objects.filter(
                kind=Charge.Kind.CHANNELS,
                period_start=period_start,
                idempotency_key__endswith=f":renewal:{period_start:%Y-%m-%d}",
            ).values_list("item", flat=True)
        ]
        ids += (
            SipProfile.objects.filter(deleted_at__isnull=True, renewal_day=day, created_at__lt=period_start)
            .exclude(public_id__in=charged)
            .order_by("pk")
            .values_list("pk", flat=True)[: limit - len(ids)]
        )
        if len(ids) >= limit:
            break
    return ids


def channels_renew(*, now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Charge every live profile whose monthly period began and is not charged yet, at most
    `limit` a run. Safe to run any number of times: the charge key names the period."""
    now = now or timezone.now()
    counts = {"renewed": 0, "failed": 0}
    for pk in _due_ids(now=now, limit=limit):
        try:
            if _renew_one(pk=pk, now=now):
                counts["renewed"] += 1
        except (DatabaseError, ApplicationError):
            logger.exception("The channels of SIP profile %s could not be renewed", pk)
            counts["failed"] += 1
    return counts
