"""Calls for the Calls list's tests, rated by the real rating engine on a small deck: one of
each way a call can be paid, and one waiting for rating."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from apps.bundles.models import BundlePeriod
from apps.cdrs.models import Cdr, PendingCdr
from apps.rating.engine import rate_pending
from apps.sip_profiles.models import SipProfile
from tests.rating.factories import Call, cdr_for, queue_calls, small_deck

DAY = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class Made:
    london: Cdr  # credit at 0.008 GBP/min: 2 min, 0.0160
    uncovered: Cdr  # no rate covers +882: not rated, marked
    inbound: Cdr  # free
    busy: Cdr  # not answered: free
    refused: Cdr  # refused at the channel limit
    bundle: Cdr  # New York, from the bundle
    branch_call: Cdr  # the other profile's call to Germany, the next day
    pending: Cdr  # not rated yet


def _refused(profile: SipProfile, edge_id: int, at: datetime) -> Cdr:
    cdr = cdr_for(
        Call(edge_id, profile.pk, profile.company_id, "GBP", "+442079460111", at, 0, answered=False), node="edge-c"
    )
    cdr.disposition = Cdr.Disposition.REFUSED
    cdr.refusal_reason = Cdr.RefusalReason.CHANNEL_LIMIT
    cdr.sip_code = 503
    cdr.save()
    PendingCdr.objects.create(cdr=cdr)
    return cdr


def make_calls(profile: SipProfile, branch: SipProfile, *, deck: bool = True) -> Made:
    """Eight calls of `profile`'s company (seven rated), 5 and 6 January 2026."""
    if deck:
        small_deck()
    BundlePeriod.objects.create(
        sip_profile=profile,
        company=profile.company,
        bundles=1,
        period_start=DAY - timedelta(days=4),
        period_end=DAY + timedelta(days=27),
        minutes_included=100,
    )
    company, p, b = profile.company_id, profile.pk, branch.pk
    first = queue_calls(
        [
            Call(1, p, company, "GBP", "+442079460000", DAY + timedelta(hours=9), 120),
            Call(2, p, company, "GBP", "+882123456789", DAY + timedelta(hours=10), 30),
            Call(3, p, company, "GBP", "+442079460001", DAY + timedelta(hours=11), 60, direction="inbound"),
            Call(4, p, company, "GBP", "+4915112345670", DAY + timedelta(hours=12), 0, answered=False),
        ],
        node="edge-c",
    )
    refused = _refused(profile, 5, DAY + timedelta(hours=13))
    rest = queue_calls(
        [
            Call(6, p, company, "GBP", "+12125550100", DAY + timedelta(hours=14), 90),
            Call(7, b, company, "GBP", "+4930123456", DAY + timedelta(days=1, hours=8), 61),
        ],
        node="edge-c",
    )
    rate_pending()
    (pending,) = queue_calls(
        [Call(8, p, company, "GBP", "+442079460002", DAY + timedelta(days=1, hours=9), 10)], node="edge-c"
    )
    return Made(*first, refused, *rest, pending)


# What rating charges (SMALL_DECK, 60/60 increments): London 2 min × 0.008; Germany 2 min × 0.012.
LONDON_COST = Decimal("0.0160")
GERMANY_COST = Decimal("0.0240")
