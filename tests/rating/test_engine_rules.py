"""The rating engine's rules, one at a time: what is never priced, what costs nothing, which deck
and which bundle period a call uses at month ends (with frozen time), and what happens to the
profile's balance after rating."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from apps.billing.ledger.allocations import credit_allocate, profile_balance
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import LedgerEntry, LedgerTransaction, ProfileRechargeAttempt
from apps.billing.recharge import profile as profile_recharge
from apps.bundles.models import BundlePeriod
from apps.cdrs.models import CdrRating, PendingCdr
from apps.core.actor import Actor
from apps.rating.engine import rate_pending
from apps.rating.models import BlockedPrefix
from tests.factories import CompanyFactory, grant, member
from tests.rating.factories import JAN_1, Call, queue_calls, small_deck
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()
JAN_5 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
MAR_1 = datetime(2026, 3, 1, tzinfo=UTC)
_edge_ids = itertools.count(1)


def call(profile: Any, callee: str, *, at: datetime = JAN_5, seconds: int = 120, **fields: Any) -> Call:
    return Call(
        edge_id=next(_edge_ids),
        profile_id=profile.pk,
        company_id=profile.company_id,
        currency=profile.company.currency,
        callee=callee,
        started_at=at,
        billable=seconds,
        **fields,
    )


def rated(*calls: Call) -> dict[str, CdrRating]:
    """Queue the calls, run the job, and return each call's rating by callee."""
    queue_calls(calls)
    rate_pending()
    assert not PendingCdr.objects.exists()
    by_edge = {r.cdr.edge_id: r for r in CdrRating.objects.select_related("cdr")}
    return {c.callee: by_edge[c.edge_id] for c in calls}


def period(profile: Any, start: datetime, end: datetime, *, left: int, included: int = 5000, **fields: Any) -> Any:
    return BundlePeriod.objects.create(
        sip_profile=profile,
        company=profile.company,
        period_start=start,
        period_end=end,
        bundles=1,
        minutes_included=included,
        minutes_used=included - left,
        **fields,
    )


def no_money_moved() -> bool:
    return not LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.CALL).exists()


# --- Never priced, costing nothing ---------------------------------------------------------------


def test_blocked_numbers_are_never_priced_and_post_nothing(profile) -> None:
    small_deck(
        rows=[
            ("1", "North America", "US", "landline", "0.005000"),
            ("1900", "US premium", "US", "premium", "2.000000"),
            ("1976", "US special services", "US", "special_service", "1.000000"),
            ("44", "United Kingdom", "GB", "landline", "0.010000"),
            ("4487", "UK premium", "GB", "premium", "1.500000"),
            ("44999", "UK emergency", "GB", "emergency", "0.500000"),
        ]
    )
    # The seeded +1900 and +449 ranges, plus a range and a single number added by staff.
    BlockedPrefix.objects.create(country="US", prefix="+1473", kind="premium_rate", reason="Grenada scams")
    BlockedPrefix.objects.create(country="GB", prefix="+442079460999", exact=True, kind="operator", reason="Test")
    bundle = period(profile, JAN_1, FEB_1, left=100)

    ratings = rated(
        call(profile, "+19005550100", seconds=3600),  # seeded range, also a premium deck rate
        call(profile, "+449012345678"),  # seeded range; the deck would price it as a landline
        call(profile, "+14734403456"),  # staff range
        call(profile, "+442079460999"),  # staff number
        call(profile, "+448712345678"),  # deck class: premium
        call(profile, "+19765550100"),  # deck class: special service (and a US number)
        call(profile, "+44999"),  # deck class: emergency
        call(profile, "+442079460998"),  # next to the blocked number: priced
    )

    assert {callee: r.status for callee, r in ratings.items()} == {
        "+19005550100": "blocked",
        "+449012345678": "blocked",
        "+14734403456": "blocked",
        "+442079460999": "blocked",
        "+448712345678": "blocked",
        "+19765550100": "blocked",
        "+44999": "blocked",
        "+442079460998": "rated",
    }
    blocked = [r for r in ratings.values() if r.status == "blocked"]
    assert all(r.cost == 0 and r.ledger_transaction_id is None and r.bundle_minutes == 0 for r in blocked)
    # Only the priced call moved money: 2 minutes at 0.01.
    assert profile_balance(profile) == Decimal("-0.0200")
    assert LedgerEntry.objects.filter(account__sip_profile=profile).count() == 1
    bundle.refresh_from_db()
    assert bundle.minutes_used == bundle.minutes_included - 100  # no bundle minute spent on them


def test_inbound_and_unanswered_calls_cost_nothing(profile) -> None:
    small_deck()
    bundle = period(profile, JAN_1, FEB_1, left=100)

    ratings = rated(
        call(profile, "+442079460001", direction="inbound", seconds=900),
        call(profile, "+12125550100", direction="inbound", seconds=900),  # would use the bundle if outbound
        call(profile, "+442079460002", answered=False),  # busy or not answered: no billable seconds
        call(profile, "+12125550101", seconds=0),  # answered, hung up at once
    )

    assert {r.status for r in ratings.values()} == {"zero_rated"}
    assert all(r.cost == 0 and r.bundle_minutes == 0 for r in ratings.values())
    assert no_money_moved()
    assert profile_balance(profile) == 0
    bundle.refresh_from_db()
    assert bundle.minutes_used == bundle.minutes_included - 100


def test_a_call_no_deck_covers_is_not_rated_and_costs_nothing(profile) -> None:
    small_deck(effective_from=datetime(2026, 1, 10, tzinfo=UTC))
    usd = CompanyFactory(currency="USD")
    american, _ = digest_profile(usd, member(usd), name="US PBX")

    ratings = rated(
        call(profile, "+819012345678", at=datetime(2026, 1, 11, tzinfo=UTC)),  # no rate for Japan
        call(profile, "+442079460001", at=datetime(2026, 1, 9, 23, 59, 59, tzinfo=UTC)),  # before the deck
        call(american, "+442079460002", at=datetime(2026, 1, 11, tzinfo=UTC)),  # no USD deck at all
    )

    assert {callee: (r.status, r.cost) for callee, r in ratings.items()} == {
        "+819012345678": ("error", 0),
        "+442079460001": ("error", 0),
        "+442079460002": ("error", 0),
    }
    assert "No GBP rate covers +819012345678" in ratings["+819012345678"].note
    assert "No GBP rate deck was in force" in ratings["+442079460001"].note
    assert "No USD rate deck was in force" in ratings["+442079460002"].note
    assert no_money_moved()


def test_only_us_landline_and_mobile_calls_use_bundle_minutes(profile) -> None:
    small_deck(
        rows=[
            ("1", "United States", "US", "landline", "0.005000"),
            ("1212", "United States, New York mobile", "US", "mobile", "0.006000"),
            ("1416", "Canada, Toronto", "CA", "landline", "0.007000"),
            ("1800", "US toll-free", "US", "toll_free", "0.000000"),
            ("44", "United Kingdom", "GB", "landline", "0.010000"),
        ]
    )
    bundle = period(profile, JAN_1, FEB_1, left=100)

    ratings = rated(
        call(profile, "+13125550100", seconds=61),  # US landline: 2 minutes
        call(profile, "+12125550100", seconds=60),  # US mobile: 1 minute
        call(profile, "+14165550100", seconds=60),  # Canada, under +1: standard rate
        call(profile, "+18005550100", seconds=60),  # US toll-free: standard rate (free)
        call(profile, "+442079460000", seconds=60),
    )

    assert {callee: (r.status, r.bundle_minutes, r.cost) for callee, r in ratings.items()} == {
        "+13125550100": ("bundle", 2, 0),
        "+12125550100": ("bundle", 1, 0),
        "+14165550100": ("rated", 0, Decimal("0.0070")),
        "+18005550100": ("rated", 0, 0),
        "+442079460000": ("rated", 0, Decimal("0.0100")),
    }
    bundle.refresh_from_db()
    assert bundle.minutes_used == bundle.minutes_included - 100 + 3


# --- Month ends, with frozen time ----------------------------------------------------------------


@time_machine.travel(datetime(2026, 2, 1, 0, 10, tzinfo=UTC), tick=False)
def test_a_call_across_the_renewal_uses_the_minutes_of_the_period_it_started_in(profile, branch) -> None:
    small_deck(
        rows=[("1", "United States", "US", "landline", "0.600000")]  # 0.01 a second, 60/60, no fee
    )
    january = period(profile, JAN_1, FEB_1, left=3)
    february = period(profile, FEB_1, MAR_1, left=5000)
    short_january = period(branch, JAN_1, FEB_1, left=1)
    period(branch, FEB_1, MAR_1, left=5000)

    ratings = rated(
        # Started in the last minute of January, ended in February: January's 3 minutes.
        call(profile, "+12125550100", at=datetime(2026, 1, 31, 23, 59, 30, tzinfo=UTC), seconds=150),
        # January has 1 minute left: 60 s from it, 90 s charged (billed 120 s), February untouched.
        call(branch, "+12125550101", at=datetime(2026, 1, 31, 23, 59, 50, tzinfo=UTC), seconds=150),
        # Started at the renewal instant: February's minutes.
        call(profile, "+12125550102", at=FEB_1, seconds=61),
    )

    first, second, third = ratings.values()
    assert (first.status, first.bundle_minutes, first.bundle_seconds, first.cost) == ("bundle", 3, 150, 0)
    assert (second.status, second.bundle_minutes, second.bundle_seconds, second.cost) == (
        "rated",
        1,
        60,
        Decimal("1.2000"),
    )
    assert (third.status, third.bundle_minutes) == ("bundle", 2)
    minutes = dict(BundlePeriod.objects.values_list("pk", "minutes_used"))
    assert minutes[january.pk] == 5000
    assert minutes[short_january.pk] == 5000
    assert minutes[february.pk] == 2
    assert BundlePeriod.objects.filter(sip_profile=branch, period_start=FEB_1).get().minutes_used == 0
    assert {r.rated_at for r in ratings.values()} == {datetime(2026, 2, 1, 0, 10, tzinfo=UTC)}


@time_machine.travel(datetime(2026, 2, 2, 3, 0, tzinfo=UTC), tick=False)
def test_minutes_do_not_carry_over_and_a_suspended_period_gives_none(profile, branch) -> None:
    small_deck(rows=[("1", "United States", "US", "landline", "0.600000")])
    period(profile, JAN_1, FEB_1, left=4000)  # unused minutes expire at the renewal
    suspended = period(branch, FEB_1, MAR_1, left=5000, suspended=True)  # unpaid after its grace period

    ratings = rated(
        call(profile, "+12125550100", at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC), seconds=60),
        call(branch, "+12125550101", at=datetime(2026, 2, 1, 9, 0, tzinfo=UTC), seconds=60),
    )

    assert [(r.status, r.bundle_minutes, r.cost) for r in ratings.values()] == [
        ("rated", 0, Decimal("0.6000")),
        ("rated", 0, Decimal("0.6000")),
    ]
    suspended.refresh_from_db()
    assert suspended.minutes_used == 0


@time_machine.travel(datetime(2026, 2, 3, tzinfo=UTC), tick=False)
def test_a_call_is_rated_with_the_deck_in_force_when_it_started(profile) -> None:
    small_deck(rows=[("44", "United Kingdom", "GB", "landline", "0.010000")])
    small_deck(rows=[("44", "United Kingdom", "GB", "landline", "0.020000")], effective_from=FEB_1)

    ratings = rated(
        call(profile, "+442079460001", at=FEB_1 - timedelta(seconds=30), seconds=120),  # ends in February
        call(profile, "+442079460002", at=FEB_1, seconds=120),
    )

    assert [r.cost for r in ratings.values()] == [Decimal("0.0200"), Decimal("0.0400")]


# --- The profile's balance ---------------------------------------------------------------------


def test_rating_may_take_a_profile_balance_below_zero(company, profile) -> None:
    small_deck(rows=[("44", "United Kingdom", "GB", "landline", "0.350000")])
    grant(company, "1.00")
    credit_allocate(actor=SYSTEM, profile=profile, amount="0.50", key="start")

    ratings = rated(call(profile, "+442079460001", seconds=120))  # 0.70: the call already happened

    assert ratings["+442079460001"].cost == Decimal("0.7000")
    assert profile_balance(profile) == Decimal("-0.2000")
    entry = LedgerEntry.objects.get(account__sip_profile=profile, transaction__kind=LedgerTransaction.Kind.CALL)
    assert entry.balance_after == Decimal("-0.2000")
    assert company_balance(company) == Decimal("0.50")  # the company's own balance is not touched


def test_rating_tops_up_a_profile_below_its_auto_recharge_threshold(
    company, owner, profile, branch, django_capture_on_commit_callbacks
) -> None:
    small_deck(rows=[("44", "United Kingdom", "GB", "landline", "1.000000")])
    grant(company, "100")
    credit_allocate(actor=SYSTEM, profile=profile, amount="10", key="profile")
    credit_allocate(actor=SYSTEM, profile=branch, amount="10", key="branch")
    for target in (profile, branch):
        profile_recharge.profile_auto_recharge_update(
            actor=Actor(user=owner), profile=target, enabled=True, amount="20", threshold="5", monthly_limit="100"
        )
    queue_calls(
        [
            call(profile, "+442079460001", seconds=480),  # 8.00: 10 → 2, below 5
            call(profile, "+442079460002", seconds=300),  # 5.00: 2 → -3
            call(branch, "+442079460003", seconds=240),  # 4.00: 10 → 6, still above 5
        ]
    )

    with django_capture_on_commit_callbacks(execute=True):
        rate_pending()

    attempt = ProfileRechargeAttempt.objects.get()
    assert (attempt.sip_profile_id, attempt.status, attempt.trigger, attempt.amount) == (
        profile.pk,
        "succeeded",
        "threshold",
        Decimal("20"),
    )
    assert profile_balance(profile) == Decimal("17")  # -3 + 20
    assert profile_balance(branch) == Decimal("6")
    assert company_balance(company) == Decimal("60")  # 100 - 10 - 10 - 20
