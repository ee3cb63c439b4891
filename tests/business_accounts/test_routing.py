"""Routing a business account to one SIP profile; never an owner's or admin's account."""

from __future__ import annotations

from functools import partial

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.services import business_account_assign, business_account_update
from apps.companies.models import Company, Membership, Role
from apps.companies.services import membership_change_role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from tests.business_accounts.factories import business_account, sip_profile
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db


def assign(owner, account, profile):
    return business_account_assign(actor=Actor(user=owner), account=account, profile=profile)


def test_a_routed_account_cannot_sign_in_until_it_is_unassigned(company, owner) -> None:
    account = business_account(company, owner)
    profile = sip_profile(company)

    routed = assign(owner, account, profile)
    assert routed.sip_profile == profile
    assert routed.signin_enabled is False

    unrouted = assign(owner, account, None)
    assert unrouted.sip_profile is None
    assert unrouted.signin_enabled is True
    actions = list(
        AuditEvent.objects.filter(company=company, action__startswith="business_account.").values_list(
            "action", flat=True
        )
    )
    assert "business_account.assigned" in actions
    assert "business_account.unassigned" in actions


def test_assigning_to_the_profile_it_is_already_on_changes_nothing(company, owner) -> None:
    account = business_account(company, owner)
    profile = sip_profile(company)
    assign(owner, account, profile)

    again = assign(owner, account, profile)

    assert again.sip_profile == profile
    assert AuditEvent.objects.filter(action="business_account.assigned").count() == 1


def test_unassigning_an_unrouted_account_changes_nothing(company, owner) -> None:
    account = business_account(company, owner)

    assert assign(owner, account, None).signin_enabled is True
    assert not AuditEvent.objects.filter(action="business_account.unassigned").exists()


def test_an_account_on_one_profile_must_be_unassigned_before_moving(company, owner) -> None:
    account = business_account(company, owner)
    first, second = sip_profile(company, "First"), sip_profile(company, "Second")
    assign(owner, account, first)

    with pytest.raises(ApplicationError) as error:
        assign(owner, account, second)

    assert error.value.status_code == 400
    assert error.value.code == "already_assigned"
    assert error.value.errors["sip_profile"] == [
        "“sales.desk” is already routed to profile “First”; unassign it first."
    ]
    assert BusinessAccount.objects.get(pk=account.pk).sip_profile == first


def test_another_companys_profile_or_a_deleted_one_is_refused(company, owner, other_company) -> None:
    account = business_account(company, owner)
    theirs = sip_profile(other_company)
    deleted = sip_profile(company, "Old")
    deleted.deleted_at = timezone.now()
    deleted.save(update_fields=["deleted_at"])

    for profile in (theirs, deleted):
        with pytest.raises(ApplicationError) as error:
            assign(owner, account, profile)
        assert "sip_profile" in error.value.errors

    account.refresh_from_db()
    assert account.sip_profile is None
    assert account.signin_enabled is True


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_an_owners_or_admins_account_can_never_be_routed(company, owner, role) -> None:
    linked = Membership.objects.get(user=member(company, role, email="boss@example.com"))
    account = business_account(company, owner, member=linked)

    with pytest.raises(ApplicationError) as error:
        assign(owner, account, sip_profile(company))

    assert error.value.code == "admin_account"
    message = error.value.errors["sip_profile"][0]
    assert "boss@example.com" in message
    assert f"lock the {role} out of the portal" in message
    account.refresh_from_db()
    assert account.sip_profile is None
    assert account.signin_enabled is True


@pytest.mark.parametrize("role", [Role.BILLING, Role.VIEWER])
def test_a_billing_or_viewer_members_account_can_be_routed(company, owner, role) -> None:
    linked = Membership.objects.get(user=member(company, role))
    account = business_account(company, owner, member=linked)

    assert assign(owner, account, sip_profile(company)).signin_enabled is False


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_a_member_whose_account_is_routed_cannot_be_made_owner_or_admin(company, owner, role) -> None:
    linked = Membership.objects.get(user=member(company, Role.VIEWER, email="agent@example.com"))
    account = business_account(company, owner, member=linked)
    assign(owner, account, sip_profile(company, "Call centre"))

    with pytest.raises(ApplicationError) as error:
        membership_change_role(actor=Actor(user=owner), membership=linked, role=role)

    assert error.value.code == "routed_business_account"
    message = error.value.errors["role"][0]
    assert "“sales.desk”" in message
    assert "“Call centre”" in message
    assert "Unassign the account" in message
    assert Membership.objects.get(pk=linked.pk).role == Role.VIEWER


def test_promotion_is_refused_through_the_api_with_the_error_on_role(company, owner) -> None:
    linked = Membership.objects.get(user=member(company, Role.BILLING))
    assign(owner, business_account(company, owner, member=linked), sip_profile(company))

    response = client_as(owner).patch(f"/api/v1/members/{linked.public_id}/", {"role": "admin"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "routed_business_account"
    assert set(body) == {"detail", "code", "errors"}
    assert "locked out of the portal" in body["errors"]["role"][0]


def test_a_member_whose_account_is_not_routed_may_be_promoted(company, owner) -> None:
    linked = Membership.objects.get(user=member(company, Role.VIEWER))
    account = business_account(company, owner, member=linked)
    assign(owner, account, sip_profile(company))
    assign(owner, account, None)

    assert membership_change_role(actor=Actor(user=owner), membership=linked, role=Role.ADMIN).role == Role.ADMIN


def test_a_routed_account_cannot_be_linked_to_an_admin(company, owner) -> None:
    account = business_account(company, owner)
    assign(owner, account, sip_profile(company))
    admin = Membership.objects.get(user=member(company, Role.ADMIN))

    with pytest.raises(ApplicationError) as error:
        business_account_update(actor=Actor(user=owner), account=account, member=admin)

    assert error.value.code == "admin_account"
    assert "member" in error.value.errors
    assert BusinessAccount.objects.get(pk=account.pk).member is None


@pytest.mark.django_db(transaction=True)
def test_the_same_account_assigned_to_two_profiles_at_once_goes_to_exactly_one() -> None:
    company = Company.objects.create(name="Race Ltd", country="GB", currency="GBP")
    owner = member(company)
    account = business_account(company, owner)
    profiles = [sip_profile(company, "Left"), sip_profile(company, "Right")]
    clients = [client_as(owner) for _ in profiles]  # signed in before the race

    def route(client, profile) -> tuple[int, dict]:
        response = client.patch(
            f"/api/v1/business-accounts/{account.public_id}/", {"sip_profile": str(profile.public_id)}
        )
        return response.status_code, response.json()

    results = run_concurrently(*[partial(route, c, p) for c, p in zip(clients, profiles, strict=True)])
    responses = {profile.name: result for profile, result in zip(profiles, results, strict=True)}

    statuses = sorted(status for status, _ in responses.values())
    assert statuses == [200, 400], responses
    winner = next(name for name, (status, _) in responses.items() if status == 200)
    _, loser_body = next(r for r in responses.values() if r[0] == 400)
    assert loser_body["code"] == "already_assigned"
    assert loser_body["errors"]["sip_profile"] == [
        f"“sales.desk” is already routed to profile “{winner}”; unassign it first."
    ]
    account.refresh_from_db()
    assert account.sip_profile.name == winner
    assert account.signin_enabled is False
    assert AuditEvent.objects.filter(action="business_account.assigned").count() == 1


@pytest.mark.django_db(transaction=True)
def test_routing_an_account_and_promoting_its_member_at_once_never_both_succeed() -> None:
    company = Company.objects.create(name="Both Ltd", country="GB", currency="GBP")
    owner = member(company)
    linked = Membership.objects.get(user=member(company, Role.VIEWER))
    account = business_account(company, owner, member=linked)
    profile = sip_profile(company)

    results = run_concurrently(
        lambda: assign(owner, account, profile),
        lambda: membership_change_role(actor=Actor(user=owner), membership=linked, role="admin"),
        catch=(BaseException,),
    )
    outcomes = {
        name: result.code
        if isinstance(result, ApplicationError)
        else repr(result)
        if isinstance(result, BaseException)
        else "ok"
        for name, result in zip(("assign", "promote"), results, strict=True)
    }

    assert sorted(outcomes.values()) in (["admin_account", "ok"], ["ok", "routed_business_account"]), outcomes
    account.refresh_from_db()
    linked.refresh_from_db()
    assert not (account.sip_profile_id and linked.role == Role.ADMIN)
