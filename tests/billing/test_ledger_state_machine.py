"""A Hypothesis state machine over the ledger's operations, checking its invariants after
every step: each transaction sums to zero, each cached balance equals the sum of its
entries, no key is used twice, and no customer balance is negative unless rating did it."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from apps.billing.allocations import credit_allocate, credit_take_back
from apps.billing.ledger import InsufficientFunds, Leg, company_account, ledger_post, platform_account, profile_account
from apps.billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from apps.core.actor import Actor
from tests.factories import CompanyFactory, member
from tests.sip_profiles.factories import digest_profile

SYSTEM = Actor.system()
amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=4)
keys = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def set_up(self) -> None:
        self.company = CompanyFactory()
        self.owner = member(self.company)
        self.profiles = [digest_profile(self.company, self.owner, name=f"P{n}")[0] for n in range(2)]
        self.expected_company = Decimal("0")
        self.expected_profiles = [Decimal("0"), Decimal("0")]

    def _key(self, prefix: str) -> str:
        return f"{prefix}:{next(keys)}"

    @rule(amount=amounts)
    def purchase(self, amount: Decimal) -> None:
        ledger_post(
            actor=SYSTEM,
            key=self._key("stripe"),
            kind="purchase",
            company=self.company,
            currency="GBP",
            description="Purchase",
            legs=[Leg(platform_account("stripe_cash", "GBP"), -amount), Leg(company_account(self.company), amount)],
        )
        self.expected_company += amount

    @rule(index=st.integers(0, 1), amount=amounts)
    def allocate(self, index: int, amount: Decimal) -> None:
        try:
            credit_allocate(actor=SYSTEM, profile=self.profiles[index], amount=amount, key=self._key("a"))
        except InsufficientFunds:
            assert amount > self.expected_company
            return
        self.expected_company -= amount
        self.expected_profiles[index] += amount

    @rule(index=st.integers(0, 1), amount=amounts)
    def take_back(self, index: int, amount: Decimal) -> None:
        try:
            credit_take_back(actor=SYSTEM, profile=self.profiles[index], amount=amount, key=self._key("t"))
        except InsufficientFunds:
            assert amount > self.expected_profiles[index]
            return
        self.expected_company += amount
        self.expected_profiles[index] -= amount

    @rule(index=st.integers(0, 1), amount=amounts)
    def rate_a_call(self, index: int, amount: Decimal) -> None:
        account = profile_account(self.profiles[index])
        ledger_post(
            actor=SYSTEM,
            key=self._key("cdr"),
            kind="call",
            company=self.company,
            currency="GBP",
            description="Call",
            legs=[Leg(account, -amount), Leg(platform_account("revenue_calls", "GBP"), amount)],
            may_go_negative={account.pk},
        )
        self.expected_profiles[index] -= amount

    @rule()
    def replay_a_key(self) -> None:
        existing = LedgerTransaction.objects.order_by("?").first()
        if existing is None:
            return
        before = LedgerEntry.objects.count()
        again, created = ledger_post(
            actor=SYSTEM,
            key=existing.idempotency_key,
            kind=existing.kind,
            company=self.company,
            currency="GBP",
            description="Replay",
            legs=[
                Leg(platform_account("stripe_cash", "GBP"), Decimal("-1")),
                Leg(company_account(self.company), Decimal("1")),
            ],
        )
        assert not created
        assert again.pk == existing.pk
        assert LedgerEntry.objects.count() == before

    @invariant()
    def balances_are_exact(self) -> None:
        if not hasattr(self, "company"):
            return
        assert company_account(self.company).balance == self.expected_company
        assert self.expected_company >= 0
        for profile, expected in zip(self.profiles, self.expected_profiles, strict=True):
            assert profile_account(profile).balance == expected

    @invariant()
    def the_books_balance(self) -> None:
        unbalanced = (
            LedgerEntry.objects.values("transaction_id")
            .annotate(total=Sum("amount"), legs=Count("id"))
            .exclude(total=0, legs__gte=2)
        )
        assert not unbalanced.exists()
        for account in LedgerAccount.objects.all():
            assert account.balance == (account.entries.aggregate(total=Sum("amount"))["total"] or 0)
        keys_used = LedgerTransaction.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
        assert not keys_used.exists()
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred checks, as at commit
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.django_db
def test_the_ledger_keeps_its_invariants_under_any_sequence_of_operations() -> None:
    LedgerMachine.TestCase.settings = settings(
        max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
    )
    state = LedgerMachine.TestCase()
    state.runTest()
