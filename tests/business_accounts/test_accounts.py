"""Creating, editing and deleting business accounts: the rules at the database and service level."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import partial

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.business_accounts.models import BusinessAccount
from apps.business_accounts.services import (
    business_account_create,
    business_account_delete,
    business_account_update,
)
from apps.companies.models import Company, Membership, Role
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.numbers.models import NumberSubscription, OnlineNumber
from tests.business_accounts.factories import business_account, sip_profile
from tests.factories import CompanyFactory, member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db


def active_number(company: Company, account: BusinessAccount, number: str = "+442071234567") -> NumberSubscription:
    now = timezone.now()
    prices = {f"price_{m}m_{c}": Decimal("5") for m in (3, 12) for c in ("usd", "eur", "gbp")}
    stock = OnlineNumber.objects.create(
        number=number, country="GB", area="London", number_type="geographic", status="active", **prices
    )
    return NumberSubscription.objects.create(
        company=company,
        number=stock,
        months=3,
        price=Decimal("5"),
        currency="GBP",
        current_period_start=now,
        current_period_end=now + timedelta(days=90),
        business_account=account,
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("sales", "too short"),
        ("a" * 33, "too long"),
        ("Sales.Desk", "uppercase"),
        ("1sales", "starts with a digit"),
        ("_sales", "starts with a symbol"),
        ("sales desk", "space"),
        ("sales@desk", "other symbol"),
        ("", "empty"),
    ],
)
def test_a_name_breaking_the_rules_is_a_field_error(company, owner, name, why) -> None:
    with pytest.raises(ApplicationError) as error:
        business_account(company, owner, name=name)

    assert "name" in error.value.errors, why
    assert not BusinessAccount.objects.exists()


@pytest.mark.parametrize("name", ["sales1", "a.b-c_d", "z" * 32, "support.team"])
def test_names_following_the_rules_are_accepted(company, owner, name) -> None:
    account = business_account(company, owner, name=name)

    assert account.name == name
    assert account.signin_enabled is True
    assert account.sip_profile is None


def test_a_name_is_unique_across_all_companies(company, owner, other_company) -> None:
    business_account(company, owner, name="sales.desk")

    with pytest.raises(ApplicationError) as error:
        business_account(other_company, member(other_company), name="sales.desk")

    assert error.value.code == "name_taken"
    assert "already taken" in error.value.errors["name"][0]


def test_the_database_refuses_the_same_name_in_another_case(company, owner, other_company) -> None:
    business_account(company, owner, name="sales.desk")

    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessAccount.objects.create(company=other_company, name="SALES.desk", display_name="Sneaky")


def test_the_database_ties_sign_in_to_being_unrouted(company, owner) -> None:
    account = business_account(company, owner)
    profile = sip_profile(company)

    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessAccount.objects.filter(pk=account.pk).update(sip_profile=profile)  # still signin_enabled
    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessAccount.objects.filter(pk=account.pk).update(signin_enabled=False)  # but on no profile


@pytest.mark.django_db(transaction=True)
def test_two_requests_creating_the_same_name_at_once_make_one_account() -> None:
    first, second = CompanyFactory(), CompanyFactory()
    owners = {first.pk: member(first), second.pk: member(second)}

    def create(company: Company) -> str:
        business_account_create(
            actor=Actor(user=owners[company.pk]), company=company, name="race.desk", display_name="Race"
        )
        return "ok"

    results = run_concurrently(partial(create, first), partial(create, second), catch=(ApplicationError,))
    outcomes = [getattr(r, "code", r) for r in results]

    assert sorted(outcomes) == ["name_taken", "ok"]
    assert BusinessAccount.objects.filter(name="race.desk").count() == 1


def test_the_display_name_is_required(company, owner) -> None:
    with pytest.raises(ApplicationError) as error:
        business_account(company, owner, display_name="   ")

    assert "display_name" in error.value.errors


def test_a_member_of_another_company_cannot_be_linked(company, owner, other_company) -> None:
    stranger = Membership.objects.get(user=member(other_company))

    with pytest.raises(ApplicationError) as error:
        business_account(company, owner, member=stranger)

    assert "member" in error.value.errors


def test_creating_and_editing_are_audited(company, owner) -> None:
    colleague = Membership.objects.get(user=member(company, Role.VIEWER))
    account = business_account(company, owner)

    business_account_update(actor=Actor(user=owner), account=account, display_name="Sales team", member=colleague)

    account.refresh_from_db()
    assert account.display_name == "Sales team"
    assert account.member == colleague
    created = AuditEvent.objects.get(company=company, action="business_account.created")
    assert created.changes["name"]["after"] == "sales.desk"
    updated = AuditEvent.objects.get(company=company, action="business_account.updated")
    assert updated.changes["display_name"] == {"before": "Sales", "after": "Sales team"}
    assert updated.changes["member"]["after"] == str(colleague.public_id)


def test_an_edit_that_changes_nothing_is_not_audited(company, owner) -> None:
    account = business_account(company, owner)

    business_account_update(actor=Actor(user=owner), account=account, display_name="Sales", name="sales.desk")

    assert not AuditEvent.objects.filter(action="business_account.updated").exists()


def test_the_name_is_fixed_after_creation(company, owner) -> None:
    account = business_account(company, owner)

    with pytest.raises(ApplicationError) as error:
        business_account_update(actor=Actor(user=owner), account=account, name="other.name")

    assert "cannot be changed" in error.value.errors["name"][0]
    account.refresh_from_db()
    assert account.name == "sales.desk"


def test_an_account_is_deleted_and_its_name_freed(company, owner, other_company) -> None:
    account = business_account(company, owner)

    business_account_delete(actor=Actor(user=owner), account=account)

    assert not BusinessAccount.objects.exists()
    assert AuditEvent.objects.filter(company=company, action="business_account.deleted").exists()
    assert business_account(other_company, member(other_company)).name == "sales.desk"


def test_an_account_that_numbers_ring_cannot_be_deleted(company, owner) -> None:
    account = business_account(company, owner)
    active_number(company, account)

    with pytest.raises(ApplicationError) as error:
        business_account_delete(actor=Actor(user=owner), account=account)

    assert error.value.code == "has_numbers"
    assert "+442071234567" in error.value.message
    assert "Unassign those numbers" in error.value.message
    assert BusinessAccount.objects.filter(pk=account.pk).exists()


def test_an_account_that_only_ended_subscriptions_remember_can_be_deleted(company, owner) -> None:
    account = business_account(company, owner)
    subscription = active_number(company, account)
    NumberSubscription.objects.filter(pk=subscription.pk).update(status="ended", ended_at=timezone.now())

    business_account_delete(actor=Actor(user=owner), account=account)

    subscription.refresh_from_db()
    assert subscription.business_account is None
    assert subscription.status == "ended"
