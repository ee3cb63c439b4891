"""Shared test data. Two kinds of builder, kept apart on purpose:

- factory_boy rows (UserFactory, CompanyFactory, MembershipFactory; `member`): plain rows with
  no side effects to speak of, for the tests' scaffolding;
- service-driven builders, which go through the app's own services or the ledger as the
  product does, so the data has its audit rows, ledger legs and balances: `api_key_for`
  (api_key_create), `grant` and `move_profile_balance` (ledger_post).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import factory
from allauth.account.models import EmailAddress

from apps.accounts.models import ApiKey, User
from apps.accounts.services import api_key_create
from apps.billing.ledger.services import Leg, company_account, ledger_post, platform_account, profile_account
from apps.billing.models import LedgerAccount, LedgerTransaction
from apps.companies.models import Company, Membership, Role
from apps.core.actor import Actor

PASSWORD = "correct-horse-battery-2026"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified_email(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            self.save()
            EmailAddress.objects.create(user=self, email=self.email, verified=True, primary=True)


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    country = "GB"
    currency = "GBP"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    company = factory.SubFactory(CompanyFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


def member(company: Company, role: str = Role.OWNER, **user_fields: Any) -> User:
    """A new user holding `role` in `company`."""
    user = UserFactory(**user_fields)
    MembershipFactory(company=company, user=user, role=role)
    return user


def api_key_for(company: Company, role: str = Role.ADMIN, creator: User | None = None) -> tuple[ApiKey, str]:
    creator = creator or member(company, Role.OWNER)
    return api_key_create(actor=Actor(user=creator), company=company, name=f"{role} key", role=role)


_grants = itertools.count(1)


def grant(company: Company, amount: str, key: str | None = None) -> LedgerTransaction:
    """Credit bought by card, posted as the purchase flow posts it (once per key)."""
    txn, _ = ledger_post(
        actor=Actor.system(),
        key=key or f"test-grant:{next(_grants)}",
        kind=LedgerTransaction.Kind.PURCHASE,
        company=company,
        currency=company.currency,
        description="Credit purchase",
        legs=[
            Leg(platform_account(LedgerAccount.Kind.STRIPE_CASH, company.currency), -Decimal(amount)),
            Leg(company_account(company), Decimal(amount)),
        ],
    )
    return txn


def move_profile_balance(profile: Any, amount: str) -> LedgerTransaction:
    """Move `amount` into (or, negative, out of) a profile's balance through the ledger, against
    the calls revenue, as rating does: only there may a profile balance go below zero."""
    account = profile_account(profile)
    other = platform_account(LedgerAccount.Kind.REVENUE_CALLS, profile.company.currency)
    value = Decimal(amount)
    txn, _ = ledger_post(
        actor=Actor.system(),
        key=f"test-move:{next(_grants)}",
        kind=LedgerTransaction.Kind.ADJUSTMENT,
        company=profile.company,
        currency=profile.company.currency,
        description="Test",
        legs=[Leg(account, value), Leg(other, -value)],
        may_go_negative=[account.pk],
    )
    return txn
