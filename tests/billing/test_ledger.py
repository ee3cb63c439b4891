from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Sum

from apps.billing.ledger.allocations import credit_allocate, credit_take_back, profile_balance
from apps.billing.ledger.services import InsufficientFunds, Leg, company_account, ledger_post, platform_account
from apps.billing.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    ProfileAutoRecharge,
    ProfileRechargeAttempt,
)
from apps.billing.recharge import profile as profile_recharge
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.services import sip_profile_delete
from tests.conftest import client_as
from tests.factories import CompanyFactory, grant, member
from tests.helpers.races import run_concurrently
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def test_a_purchase_posts_two_balanced_entries_and_updates_the_cached_balances(company) -> None:
    txn = grant(company, "100", "stripe:pi_1")

    assert sorted(e.amount for e in txn.entries.all()) == [Decimal("-100"), Decimal("100")]
    assert company_account(company).balance == Decimal("100")
    assert platform_account(LedgerAccount.Kind.STRIPE_CASH, "GBP").balance == Decimal("-100")


def test_the_same_key_posts_once(company) -> None:
    first = grant(company, "100", "stripe:pi_same")
    second = grant(company, "100", "stripe:pi_same")

    assert first.pk == second.pk
    assert company_account(company).balance == Decimal("100")
    assert LedgerEntry.objects.count() == 2


def _commit_checks() -> None:
    """Run the deferred constraint triggers now, as COMMIT would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_entries_that_do_not_balance_are_refused_by_the_database(company) -> None:
    account = company_account(company)
    cash = platform_account(LedgerAccount.Kind.STRIPE_CASH, company.currency)
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(
            kind="adjustment", company=company, currency="GBP", description="x", idempotency_key="bad:1"
        )
        # The check runs at the end of each INSERT of entries: a transaction's entries go in together.
        with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic():
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(transaction=txn, account=account, amount=Decimal("5"), balance_after=Decimal("5")),
                    LedgerEntry(transaction=txn, account=cash, amount=Decimal("-4"), balance_after=Decimal("-4")),
                ]
            )
        # Nor can a balanced transaction be unbalanced later by another entry.
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(transaction=txn, account=account, amount=Decimal("5"), balance_after=Decimal("5")),
                LedgerEntry(transaction=txn, account=cash, amount=Decimal("-5"), balance_after=Decimal("-5")),
            ]
        )
        with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic():
            LedgerEntry.objects.create(transaction=txn, account=cash, amount=Decimal("-1"), balance_after=Decimal("-6"))
        transaction.set_rollback(True)


def test_a_transaction_without_entries_is_refused_by_the_database_at_commit(company) -> None:
    with transaction.atomic():
        LedgerTransaction.objects.create(
            kind="adjustment", company=company, currency="GBP", description="x", idempotency_key="bad:3"
        )
        with pytest.raises(IntegrityError, match="no entries"):
            _commit_checks()
        transaction.set_rollback(True)


def test_entries_in_another_currency_are_refused_by_the_database(company) -> None:
    euro_cash = platform_account(LedgerAccount.Kind.STRIPE_CASH, "EUR")
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(
            kind="adjustment", company=company, currency="GBP", description="x", idempotency_key="bad:4"
        )
        with pytest.raises(IntegrityError, match="another currency"), transaction.atomic():
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(
                        transaction=txn,
                        account=company_account(company),
                        amount=Decimal("5"),
                        balance_after=Decimal("5"),
                    ),
                    LedgerEntry(transaction=txn, account=euro_cash, amount=Decimal("-5"), balance_after=Decimal("-5")),
                ]
            )
        transaction.set_rollback(True)


def test_a_transaction_with_a_single_entry_is_refused_by_the_database(company) -> None:
    with transaction.atomic():
        txn = LedgerTransaction.objects.create(
            kind="adjustment", company=company, currency="GBP", description="x", idempotency_key="bad:2"
        )
        with pytest.raises(IntegrityError, match="unbalanced"), transaction.atomic():
            LedgerEntry.objects.create(
                transaction=txn, account=company_account(company), amount=Decimal("5"), balance_after=Decimal("5")
            )
        transaction.set_rollback(True)


def test_entries_and_transactions_cannot_be_changed_or_deleted(company) -> None:
    txn = grant(company, "10", "stripe:pi_2")
    entry = txn.entries.first()

    for statement in (
        lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1")),
        lambda: LedgerEntry.objects.filter(pk=entry.pk).delete(),
        lambda: LedgerTransaction.objects.filter(pk=txn.pk).update(description="edited"),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            statement()


def test_a_company_balance_can_never_be_negative_in_the_database(company) -> None:
    account = company_account(company)

    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerAccount.objects.filter(pk=account.pk).update(balance=Decimal("-0.0001"))


def test_allocating_moves_credit_and_never_more_than_the_company_has(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_3")

    credit_allocate(actor=Actor(user=owner), profile=profile, amount="30", key="a1")
    with pytest.raises(InsufficientFunds) as error:
        credit_allocate(actor=Actor(user=owner), profile=profile, amount="20.0001", key="a2")

    assert "amount" in error.value.errors
    assert company_account(company).balance == Decimal("20")
    assert profile_balance(profile) == Decimal("30")


def test_taking_back_never_takes_more_than_the_profile_holds(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_4")
    credit_allocate(actor=Actor(user=owner), profile=profile, amount="30", key="b1")

    credit_take_back(actor=Actor(user=owner), profile=profile, amount="10", key="b2")
    with pytest.raises(InsufficientFunds):
        credit_take_back(actor=Actor(user=owner), profile=profile, amount="20.01", key="b3")

    assert profile_balance(profile) == Decimal("20")
    assert company_account(company).balance == Decimal("30")


@pytest.mark.parametrize("amount", ["0", "-5", "abc", "1.00001", "NaN", "Infinity"])
def test_bad_amounts_are_field_errors(company, owner, amount) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_5")

    with pytest.raises(ApplicationError) as error:
        credit_allocate(actor=Actor(user=owner), profile=profile, amount=amount, key="c1")

    assert "amount" in error.value.errors


def test_a_profile_holding_credit_cannot_be_deleted(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    grant(company, "50", "stripe:pi_6")
    credit_allocate(actor=Actor(user=owner), profile=profile, amount="5", key="d1")

    with pytest.raises(ApplicationError) as error:
        sip_profile_delete(actor=Actor(user=owner), profile=profile)
    response = client_as(owner).delete(f"/api/v1/sip-profiles/{profile.public_id}/")

    assert error.value.code == "profile_holds_credit"
    assert "take it back" in error.value.message
    assert response.status_code == 400
    credit_take_back(actor=Actor(user=owner), profile=profile, amount="5", key="d2")
    sip_profile_delete(actor=Actor(user=owner), profile=profile)


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_allocating_and_taking_back_end_with_exact_totals() -> None:
    company = CompanyFactory()
    owner = member(company)
    profiles = [digest_profile(company, owner, name=f"P{n}")[0] for n in range(3)]
    grant(company, "100", "stripe:pi_race")

    def work(n: int) -> None:
        profile = profiles[n % 3]
        if n % 5 == 4:
            credit_take_back(actor=Actor(user=owner), profile=profile, amount="3", key=f"race-t{n}")
        else:
            credit_allocate(actor=Actor(user=owner), profile=profile, amount="7", key=f"race-a{n}")

    outcomes = run_concurrently(*[partial(work, n) for n in range(50)], catch=(InsufficientFunds,))
    refused = [o for o in outcomes if isinstance(o, InsufficientFunds)]

    company_balance = company_account(company).balance
    held = sum(profile_balance(p) for p in profiles)
    assert company_balance >= 0
    assert all(profile_balance(p) >= 0 for p in profiles)
    assert company_balance + held == Decimal("100")
    for account in LedgerAccount.objects.all():
        assert account.balance == sum(e.amount for e in account.entries.all()), account
    assert refused  # 40 allocations of 7 cannot all fit in 100


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_allocating_taking_back_debiting_calls_and_recharging_profiles_end_with_exact_totals(
    caplog,
) -> None:
    company = CompanyFactory()
    owner = member(company)
    # Each new profile's channels charge stays unpaid: the company balance is empty until the grant.
    profiles = [digest_profile(company, owner, name=f"R{n}")[0] for n in range(3)]
    grant(company, "200", "stripe:pi_race_recharge")
    for profile in profiles:
        # Saving the settings tops the empty profile up at once (after commit): 6 from the company.
        profile_recharge.profile_auto_recharge_update(
            actor=Actor(user=owner), profile=profile, enabled=True, amount="6", threshold="4", monthly_limit="60"
        )
    calls = platform_account(LedgerAccount.Kind.REVENUE_CALLS, company.currency)
    debited: list[Decimal] = []

    def work(n: int) -> None:
        profile = profiles[n % 3]
        actor = Actor(user=owner)
        match n % 5:
            case 0:
                credit_allocate(actor=actor, profile=profile, amount="5", key=f"race2-a{n}")
            case 1:
                # Its after-commit hook runs the profile's auto-recharge in this thread.
                credit_take_back(actor=actor, profile=profile, amount="2", key=f"race2-t{n}")
            case 2 | 3:
                # A call rated after it happened may overdraw the profile; rating then asks for a top-up.
                account = LedgerAccount.objects.get(sip_profile=profile)
                ledger_post(
                    actor=SYSTEM,
                    key=f"cdr:race2-{n}",
                    kind=LedgerTransaction.Kind.CALL,
                    company=company,
                    currency=company.currency,
                    description="Call",
                    legs=[Leg(account, Decimal("-3.5")), Leg(calls, Decimal("3.5"))],
                    may_go_negative={account.pk},
                )
                debited.append(Decimal("3.5"))
                profile_recharge.profile_balance_debited(profile.pk)
            case _:
                profile_recharge.profile_recharge_run(profile_id=profile.pk, trigger="threshold")

    run_concurrently(*[partial(work, n) for n in range(50)], catch=(InsufficientFunds,))

    # on_commit(robust=True) hooks log their exceptions instead of raising them.
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    company_balance = company_account(company).balance
    held = sum(profile_balance(p) for p in profiles)
    assert company_balance >= 0
    assert len(debited) == 20
    assert company_balance + held + sum(debited) == Decimal("200")
    assert calls.entries.aggregate(total=Sum("amount"))["total"] == sum(debited)
    for account in LedgerAccount.objects.all():
        assert account.balance == sum(e.amount for e in account.entries.all()), account
    unbalanced = LedgerEntry.objects.values("transaction_id").annotate(total=Sum("amount"), legs=Count("id"))
    assert not unbalanced.exclude(total=0, legs__gte=2).exists()
    topped_up = ProfileRechargeAttempt.objects.filter(status="succeeded")
    for profile in profiles:
        mine = topped_up.filter(sip_profile=profile)
        limit = ProfileAutoRecharge.objects.get(sip_profile=profile).monthly_limit
        assert (mine.aggregate(total=Sum("amount"))["total"] or 0) <= limit
        # One allocation per recorded top-up, and no top-up without its allocation.
        prefix = f"credit:auto-recharge:{profile.public_id}:"
        allocated = LedgerTransaction.objects.filter(idempotency_key__startswith=prefix)
        assert allocated.count() == mine.count()
    assert topped_up.count() > 3  # more than the three made when the settings were saved
