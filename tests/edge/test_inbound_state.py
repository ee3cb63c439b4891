"""A profile's inbound routes in its desired edge state, and every change of a number's or a
business account's routing marks the profiles it moves between (no Kamailio needed)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from apps.business_accounts.services import business_account_assign, business_account_create, business_account_delete
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.edge.models import Carrier
from apps.edge.selectors import INT, STR, Address, carrier_sources, profile_edge_state
from apps.edge.services import carrier_upsert
from apps.numbers.models import NumberSubscription
from apps.numbers.services import number_assign, number_release, number_subscription_suspend_unpaid
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_create, sip_profile_delete
from tests.sip_profiles.factories import digest_profile, held_number


def _account(owner: Any, company: Any, name: str, profile: SipProfile | None) -> Any:
    actor = Actor(user=owner)
    account = business_account_create(actor=actor, company=company, name=name, display_name=name)
    if profile is not None:
        account = business_account_assign(actor=actor, account=account, profile=profile)
    return account


def _routed_number(owner: Any, company: Any, account: Any, number: str) -> NumberSubscription:
    return number_assign(
        actor=Actor(user=owner), subscription=held_number(company, number=number), business_account=account
    )


def _ip_profile(owner: Any, company: Any, *addresses: dict[str, Any]) -> SipProfile:
    profile, _ = sip_profile_create(
        actor=Actor(user=owner),
        company=company,
        name="IP PBX",
        auth_method="ip",
        channels=1,
        allowed_ips=list(addresses),
    )
    return profile


def _synced(*profiles: SipProfile) -> None:
    SipProfile.objects.filter(pk__in=[p.pk for p in profiles]).update(provisioning_state=SipProfile.Provisioning.SYNCED)


def _states(*profiles: SipProfile) -> list[str]:
    return [SipProfile.objects.get(pk=p.pk).provisioning_state for p in profiles]


def test_a_profiles_state_routes_its_accounts_names_and_their_active_numbers_to_its_registered_user(
    company: Any, owner: Any
) -> None:
    profile, _ = digest_profile(company, owner)
    account = _account(owner, company, "reception", profile)
    _routed_number(owner, company, account, "+442079460100")
    suspended = _routed_number(owner, company, account, "+442079460101")
    NumberSubscription.objects.filter(pk=suspended.pk).update(status=NumberSubscription.Status.SUSPENDED)
    _account(owner, company, "elsewhere", None)  # routed to no profile

    state = profile_edge_state(profile_id=profile.pk)

    assert state.routes == frozenset({"a:reception", "n:+442079460100"})
    assert state.attrs[f"{profile.pk}:user"] == (STR, profile.sip_username)
    assert f"{profile.pk}:dst" not in state.attrs
    assert state.attrs[f"{profile.pk}:channels"] == (INT, "2")


@pytest.mark.parametrize(
    ("addresses", "dst"),
    [
        ([{"address": "192.0.2.10", "port": 5070, "transport": "udp"}], "192.0.2.10:5070;transport=udp"),
        ([{"address": "2001:db8::10", "port": 5060, "transport": "tcp"}], "[2001:db8::10]:5060;transport=tcp"),
        (  # a network cannot be a destination; the host after it is
            [
                {"address": "198.51.100.0/28", "port": 5060, "transport": "udp"},
                {"address": "192.0.2.20", "port": 5080, "transport": "udp"},
            ],
            "192.0.2.20:5080;transport=udp",
        ),
        ([{"address": "198.51.100.0/28", "port": 5060, "transport": "udp"}], None),
    ],
)
def test_an_ip_profile_receives_at_its_first_host_address(
    company: Any, owner: Any, addresses: list[dict[str, Any]], dst: str | None
) -> None:
    profile = _ip_profile(owner, company, *addresses)

    attrs = profile_edge_state(profile_id=profile.pk).attrs

    assert attrs.get(f"{profile.pk}:dst") == ((STR, dst) if dst else None)
    assert f"{profile.pk}:user" not in attrs


def test_a_deleted_profile_routes_nothing(company: Any, owner: Any) -> None:
    profile, _ = digest_profile(company, owner)
    _account(owner, company, "reception", profile)

    sip_profile_delete(actor=Actor(user=owner), profile=profile)

    assert profile_edge_state(profile_id=profile.pk).routes == frozenset()


def test_moving_a_number_to_another_account_marks_both_profiles(company: Any, owner: Any) -> None:
    first, _ = digest_profile(company, owner, name="First")
    second, _ = digest_profile(company, owner, name="Second")
    subscription = _routed_number(owner, company, _account(owner, company, "firstdesk", first), "+442079460100")
    target = _account(owner, company, "seconddesk", second)
    _synced(first, second)

    number_assign(actor=Actor(user=owner), subscription=subscription, business_account=target)

    assert _states(first, second) == ["pending", "pending"]
    assert "n:+442079460100" not in profile_edge_state(profile_id=first.pk).routes
    assert "n:+442079460100" in profile_edge_state(profile_id=second.pk).routes


def test_releasing_a_number_or_suspending_it_unpaid_marks_its_profile(company: Any, owner: Any) -> None:
    profile, _ = digest_profile(company, owner)
    account = _account(owner, company, "reception", profile)
    released = _routed_number(owner, company, account, "+442079460100")
    unpaid = _routed_number(owner, company, account, "+442079460101")
    _synced(profile)

    number_release(actor=Actor(user=owner), subscription=released)
    assert _states(profile) == ["pending"]

    _synced(profile)
    with transaction.atomic():
        locked = NumberSubscription.objects.select_for_update().get(pk=unpaid.pk)
        assert number_subscription_suspend_unpaid(actor=Actor.system(), subscription=locked, now=timezone.now())
    assert _states(profile) == ["pending"]
    assert profile_edge_state(profile_id=profile.pk).routes == frozenset({"a:reception"})


def test_routing_unrouting_or_deleting_a_business_account_marks_its_profile(company: Any, owner: Any) -> None:
    profile, _ = digest_profile(company, owner)
    _synced(profile)
    account = _account(owner, company, "reception", profile)
    assert _states(profile) == ["pending"]

    _synced(profile)
    business_account_assign(actor=Actor(user=owner), account=account, profile=None)
    assert _states(profile) == ["pending"]
    assert profile_edge_state(profile_id=profile.pk).routes == frozenset()

    business_account_assign(actor=Actor(user=owner), account=account, profile=profile)
    _synced(profile)
    business_account_delete(actor=Actor(user=owner), account=account)
    assert _states(profile) == ["pending"]


def test_a_carriers_inbound_sources_are_checked_and_pushed_as_networks(db: Any) -> None:
    with pytest.raises(ApplicationError) as error:
        carrier_upsert(name="bad", address="192.0.2.1", port=5060, inbound_from=["198.51.100.0/28", "carrier.example"])
    assert list(error.value.errors) == ["inbound_from"]
    assert not Carrier.objects.filter(name="bad").exists()

    carrier_upsert(name="good", address="192.0.2.1", port=5060, inbound_from=["198.51.100.7", "203.0.113.0/24"])
    carrier_upsert(name="off", address="192.0.2.2", port=5060, inbound_from=["192.0.2.99"], enabled=False)

    assert Carrier.objects.get(name="good").inbound_from == ["198.51.100.7/32", "203.0.113.0/24"]
    assert carrier_sources() == frozenset(
        {Address(ip="198.51.100.7", mask=32, port=0), Address(ip="203.0.113.0", mask=24, port=0)}
    )
