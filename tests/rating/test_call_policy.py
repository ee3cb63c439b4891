"""What the SIP edge is told a profile may do at call time: paid outbound calls, US calls on
bundle minutes, inbound calls, and why paid calls are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.bundles.models import BundlePeriod
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.rating.call_policy import Refusal, call_policies, call_policy
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_delete, sip_profile_update
from tests.conftest import client_as
from tests.factories import member, move_profile_balance
from tests.helpers.queries import expect_queries
from tests.sip_profiles.factories import digest_profile, ip_profile

pytestmark = pytest.mark.django_db

JAN_15 = datetime(2026, 1, 15, 12, tzinfo=UTC)


give = move_profile_balance


def bundle(profile: SipProfile, *, used: int = 0, included: int = 5000, **fields: Any) -> BundlePeriod:
    values = {
        "period_start": datetime(2026, 1, 1, tzinfo=UTC),
        "period_end": datetime(2026, 2, 1, tzinfo=UTC),
        "bundles": 1,
        "minutes_included": included,
        "minutes_used": used,
        **fields,
    }
    return BundlePeriod.objects.create(sip_profile=profile, company=profile.company, **values)


@pytest.fixture
def profile(company: Company, owner: Any) -> SipProfile:
    profile, _ = digest_profile(company, owner)
    return profile


def test_an_active_profile_with_credit_may_make_paid_calls(profile) -> None:
    give(profile, "10.00")

    policy = call_policy(profile, now=JAN_15)

    assert (policy.paid_calls_allowed, policy.bundle_calls_allowed, policy.inbound_calls_allowed) == (True, False, True)
    assert (policy.balance, policy.currency) == (Decimal("10.0000"), profile.company.currency)
    assert (policy.refusal, policy.reason) == (Refusal.NONE, "")


@pytest.mark.parametrize(
    ("moves", "balance"),
    [
        ([], "0.0000"),  # never given credit: no ledger account yet
        (["2.00", "-2.00"], "0.0000"),
        (["1.00", "-1.13"], "-0.1300"),  # rating overdrew it
    ],
)
def test_paid_calls_are_refused_unless_the_balance_is_above_zero(profile, moves, balance) -> None:
    for amount in moves:
        give(profile, amount)

    policy = call_policy(profile, now=JAN_15)

    assert policy.balance == Decimal(balance)
    assert (policy.paid_calls_allowed, policy.bundle_calls_allowed, policy.inbound_calls_allowed) == (
        False,
        False,
        True,
    )
    assert policy.refusal == Refusal.NO_BALANCE
    assert policy.reason == (
        f"The profile balance is {Decimal(balance):.2f} {profile.company.currency}: paid outbound calls are "
        "refused until credit is allocated to it."
    )


def test_the_smallest_positive_balance_allows_paid_calls(profile) -> None:
    give(profile, "0.0001")

    assert call_policy(profile, now=JAN_15).paid_calls_allowed


def test_bundle_minutes_let_us_calls_through_at_zero_balance(profile) -> None:
    bundle(profile, used=4880)
    give(profile, "1.00")
    give(profile, "-1.50")

    policy = call_policy(profile, now=JAN_15)

    assert not policy.paid_calls_allowed
    assert policy.bundle_calls_allowed
    assert policy.bundle_minutes_left == 120
    assert policy.bundle_period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert policy.refusal == Refusal.NO_BALANCE
    assert "US landlines and mobiles still go through on its 120 bundle minutes left" in policy.reason


def test_only_the_period_in_force_counts(profile) -> None:
    bundle(profile, used=0)  # January

    assert call_policy(profile, now=datetime(2026, 2, 1, tzinfo=UTC)).bundle_minutes_left == 0
    assert call_policy(profile, now=datetime(2025, 12, 31, 23, 59, tzinfo=UTC)).bundle_minutes_left == 0
    assert call_policy(profile, now=datetime(2026, 1, 31, 23, 59, tzinfo=UTC)).bundle_minutes_left == 5000


def test_used_up_bundle_minutes_let_nothing_through(profile) -> None:
    bundle(profile, used=5000)

    policy = call_policy(profile, now=JAN_15)

    assert (policy.bundle_calls_allowed, policy.bundle_minutes_left) == (False, 0)


def test_a_suspended_bundle_period_gives_no_minutes(profile) -> None:
    bundle(profile, used=10, suspended=True)

    policy = call_policy(profile, now=JAN_15)

    assert (policy.bundle_calls_allowed, policy.bundle_minutes_left, policy.bundle_suspended) == (False, 0, True)
    assert "cannot be used until the unpaid bundle charge is paid" in policy.reason


def test_a_suspended_profile_makes_and_receives_no_calls(profile, owner) -> None:
    give(profile, "10.00")
    bundle(profile)
    sip_profile_update(actor=Actor(user=owner), profile=profile, status=SipProfile.Status.SUSPENDED)

    policy = call_policy(profile, now=JAN_15)

    assert (policy.paid_calls_allowed, policy.bundle_calls_allowed, policy.inbound_calls_allowed) == (
        False,
        False,
        False,
    )
    assert policy.refusal == Refusal.SUSPENDED


def test_a_profile_suspended_for_an_unpaid_charge_says_so(profile) -> None:
    give(profile, "10.00")
    SipProfile.objects.filter(pk=profile.pk).update(status=SipProfile.Status.SUSPENDED, suspended_for_billing=True)

    policy = call_policy(profile, now=JAN_15)

    assert not policy.paid_calls_allowed
    assert not policy.inbound_calls_allowed
    assert policy.refusal == Refusal.SUSPENDED_FOR_BILLING
    assert "a charge for it is unpaid" in policy.reason


def test_a_deleted_profile_makes_and_receives_no_calls(profile, owner) -> None:
    bundle(profile)
    sip_profile_delete(actor=Actor(user=owner), profile=profile)

    policy = call_policy(profile, now=JAN_15)

    assert (policy.paid_calls_allowed, policy.bundle_calls_allowed, policy.inbound_calls_allowed) == (
        False,
        False,
        False,
    )
    assert policy.refusal == Refusal.DELETED


@pytest.mark.parametrize("amount", [None, "10.00", "-5.00"])
def test_inbound_calls_never_depend_on_the_balance(profile, amount) -> None:
    if amount is not None:
        give(profile, amount)

    assert call_policy(profile, now=JAN_15).inbound_calls_allowed


def test_the_bulk_policies_take_two_queries_however_many_profiles(company, owner) -> None:
    profiles = [digest_profile(company, owner, name=f"PBX {n}")[0] for n in range(6)]
    give(profiles[0], "3.00")
    give(profiles[1], "1.00")
    give(profiles[1], "-2.00")
    bundle(profiles[2], used=100)
    bundle(profiles[3], used=7, suspended=True)
    SipProfile.objects.filter(pk=profiles[4].pk).update(status=SipProfile.Status.SUSPENDED)

    with expect_queries("the profiles with their balances", "the bundle periods in force"):
        few = call_policies([p.pk for p in profiles[:2]], now=JAN_15)
    with expect_queries("the profiles with their balances", "the bundle periods in force"):
        policies = call_policies([p.pk for p in profiles] + [0], now=JAN_15)

    assert set(few) == {profiles[0].pk, profiles[1].pk}
    assert set(policies) == {p.pk for p in profiles}  # an id of no profile is left out
    summary = [
        (policies[p.pk].paid_calls_allowed, policies[p.pk].bundle_minutes_left, policies[p.pk].inbound_calls_allowed)
        for p in profiles
    ]
    assert summary == [
        (True, 0, True),
        (False, 0, True),
        (False, 4900, True),
        (False, 0, True),
        (False, 0, False),
        (
            False,
            0,
            True,
        ),
    ]
    # The bulk answer is the single answer.
    assert all(policies[p.pk] == call_policy(p, now=JAN_15) for p in profiles)
    assert call_policies([], now=JAN_15) == {}


def test_the_api_shows_the_call_policy(company, owner, profile) -> None:
    give(profile, "1.00")
    give(profile, "-1.00")
    bundle(
        profile, used=4000, period_start=datetime(2000, 1, 1, tzinfo=UTC), period_end=datetime(2100, 1, 1, tzinfo=UTC)
    )
    client = client_as(member(company, Role.VIEWER))

    response = client.get(f"/api/v1/sip-profiles/{profile.public_id}/call-policy/")

    assert response.status_code == 200
    body = response.json()
    checked_at = body.pop("checked_at")
    assert checked_at.endswith("Z")
    assert body == {
        "profile": str(profile.public_id),
        "paid_calls_allowed": False,
        "bundle_calls_allowed": True,
        "inbound_calls_allowed": True,
        "balance": "0.0000",
        "currency": company.currency,
        "us_bundle_minutes_left": 1000,
        "bundle_period_ends_at": "2100-01-01T00:00:00Z",
        "bundle_suspended": False,
        "refusal": "no_balance",
        "reason": (
            f"The profile balance is 0.00 {company.currency}: paid outbound calls are refused until credit is "
            "allocated to it. Calls to US landlines and mobiles still go through on its 1000 bundle minutes left."
        ),
    }


def test_another_companys_profile_or_a_deleted_one_is_404(company, owner, other_company) -> None:
    theirs = ip_profile(other_company, member(other_company, Role.OWNER))
    mine = ip_profile(company, owner, address="192.0.2.77", name="Gone")
    sip_profile_delete(actor=Actor(user=owner), profile=mine)
    client = client_as(owner)

    for profile in (theirs, mine):
        response = client.get(f"/api/v1/sip-profiles/{profile.public_id}/call-policy/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_the_call_policy_is_read_only(owner, profile) -> None:
    response = client_as(owner).post(f"/api/v1/sip-profiles/{profile.public_id}/call-policy/", {})

    assert response.status_code == 405
