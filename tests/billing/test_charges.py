from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.billing.charges.services import charges_settle
from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import company_account, platform_account
from apps.billing.models import Charge, CreditPurchase, LedgerAccount, LedgerTransaction
from apps.billing.purchases.wires import purchase_confirm_wire
from apps.companies.models import Notice
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import number_periods_process
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.renewals import channels_renew
from apps.sip_profiles.services import sip_profile_update
from tests.conftest import client_as
from tests.factories import CompanyFactory, grant, member
from tests.helpers.races import run_concurrently
from tests.sip_profiles.factories import digest_profile, held_number

pytestmark = pytest.mark.django_db
PRICE = Decimal("7.95")  # a channel per month in GBP, seeded
NOV_10 = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)
# A period end after the (real) purchase time of the numbers these tests hold.
DUE = datetime(2027, 1, 10, 0, 0, tzinfo=UTC)


def test_a_new_profiles_channels_are_paid_from_the_company_balance(company, owner) -> None:
    grant(company, "100", "stripe:pi_c1")
    with time_machine.travel(NOV_10, tick=False):
        profile, _ = digest_profile(company, owner)  # 2 channels, a whole first month

    charge = Charge.objects.get(kind="channels")
    assert charge.status == Charge.Status.PAID
    assert charge.amount == 2 * PRICE
    assert charge.ledger_transaction.kind == LedgerTransaction.Kind.CHARGE
    assert company_balance(company) == Decimal("100") - 2 * PRICE
    assert platform_account(LedgerAccount.Kind.REVENUE_CHANNELS, "GBP").balance == 2 * PRICE
    assert profile.status == SipProfile.Status.ACTIVE


def test_a_charge_the_balance_cannot_cover_stays_unpaid_for_seven_days_with_a_notice(company, owner) -> None:
    with time_machine.travel(NOV_10, tick=False):
        profile, _ = digest_profile(company, owner)

    charge = Charge.objects.get(kind="channels")
    assert charge.status == Charge.Status.UNPAID
    assert charge.grace_until == NOV_10 + timedelta(days=7)
    assert charge.ledger_transaction is None
    assert Notice.objects.filter(company=company, kind="charge_unpaid").count() == 1
    profile.refresh_from_db()
    assert profile.status == SipProfile.Status.ACTIVE  # still carrying calls during the grace period
    assert company_account(company).balance == 0


def test_unpaid_charges_are_retried_with_one_notice_a_day(company, owner) -> None:
    with time_machine.travel(NOV_10, tick=False):
        digest_profile(company, owner)
    with time_machine.travel(NOV_10 + timedelta(days=1, hours=1), tick=False):
        charges_settle()
        charges_settle()
    with time_machine.travel(NOV_10 + timedelta(days=2, hours=1), tick=False):
        charges_settle()

    assert Notice.objects.filter(company=company, kind="charge_unpaid").count() == 3
    assert Charge.objects.get().status == Charge.Status.UNPAID


def test_after_the_grace_period_the_profile_is_suspended_and_paying_resumes_it(company, owner) -> None:
    with time_machine.travel(NOV_10, tick=False):
        profile, _ = digest_profile(company, owner)
    with time_machine.travel(NOV_10 + timedelta(days=7, hours=1), tick=False):
        assert charges_settle()["suspended"] == 1

    profile.refresh_from_db()
    assert profile.status == SipProfile.Status.SUSPENDED
    assert profile.suspended_for_billing
    lift = client_as(owner).patch(f"/api/v1/sip-profiles/{profile.public_id}/", {"status": "active"})
    assert lift.status_code == 400
    assert lift.json()["code"] == "suspended_for_billing"

    grant(company, "50", "stripe:pi_c2")
    with time_machine.travel(NOV_10 + timedelta(days=8), tick=False):
        assert charges_settle()["paid"] == 1

    profile.refresh_from_db()
    assert profile.status == SipProfile.Status.ACTIVE
    assert not profile.suspended_for_billing
    assert Charge.objects.get().status == Charge.Status.PAID
    assert company_balance(company) == Decimal("50") - 2 * PRICE
    assert Notice.objects.filter(company=company, kind="charge_paid").exists()


def test_an_unpaid_number_renewal_quarantines_the_number_and_paying_brings_it_back(company, owner) -> None:
    subscription = held_number(company, "+442079460077")
    subscription.current_period_end = DUE
    subscription.save()
    profile, _ = digest_profile(company, owner)
    grant(company, "100", "stripe:pi_c3")
    sip_profile_update(actor=Actor(user=owner), profile=profile, caller_id="+442079460077")
    # Everything left goes to the profile, so the renewal cannot be paid.
    credit_allocate(actor=Actor(user=owner), profile=profile, amount=company_balance(company), key="spend")

    with time_machine.travel(DUE + timedelta(hours=1), tick=False):
        number_periods_process()
    renewal = Charge.objects.get(kind="number")
    assert renewal.status == Charge.Status.UNPAID
    with time_machine.travel(DUE + timedelta(days=7, hours=2), tick=False):
        charges_settle()

    subscription.refresh_from_db()
    profile.refresh_from_db()
    assert subscription.status == NumberSubscription.Status.SUSPENDED
    assert subscription.number.status == OnlineNumber.Status.QUARANTINE
    assert profile.caller_id_number is None

    grant(company, "10", "stripe:pi_c4")
    with time_machine.travel(DUE + timedelta(days=9), tick=False):
        charges_settle()
    subscription.refresh_from_db()
    assert subscription.status == NumberSubscription.Status.ACTIVE
    assert subscription.number.status == OnlineNumber.Status.ACTIVE


def test_a_suspended_number_whose_quarantine_ends_is_gone_and_its_charge_never_collected(company, owner) -> None:
    subscription = held_number(company, "+442079460078")
    subscription.current_period_end = DUE
    subscription.save()
    with time_machine.travel(DUE + timedelta(hours=1), tick=False):
        number_periods_process()
    with time_machine.travel(DUE + timedelta(days=8), tick=False):
        charges_settle()
    with time_machine.travel(DUE + timedelta(days=40), tick=False):
        number_periods_process()
        grant(company, "100", "stripe:pi_c5")
        charges_settle()

    subscription.refresh_from_db()
    assert subscription.status == NumberSubscription.Status.ENDED
    assert subscription.number.status == OnlineNumber.Status.AVAILABLE
    assert Charge.objects.get(kind="number").status == Charge.Status.CANCELLED
    assert company_balance(company) == Decimal("100")


def test_channels_renew_on_the_renewal_day_once_per_period(company, owner) -> None:
    grant(company, "100", "stripe:pi_c6")
    with time_machine.travel(NOV_10 + timedelta(hours=12), tick=False):
        profile, _ = digest_profile(company, owner)
    with time_machine.travel(datetime(2026, 11, 30, tzinfo=UTC), tick=False):
        assert channels_renew()["renewed"] == 0  # still the first, prorated, period
    with time_machine.travel(datetime(2026, 12, 10, 6, 0, tzinfo=UTC), tick=False):
        first = channels_renew()
        again = channels_renew()

    assert first["renewed"] == 1
    assert again["renewed"] == 0
    renewal = Charge.objects.get(idempotency_key__contains="renewal")
    assert renewal.amount == 2 * PRICE
    assert renewal.period_start == datetime(2026, 12, 10, tzinfo=UTC)
    assert renewal.status == Charge.Status.PAID
    assert profile.pk


def test_each_renewal_run_takes_the_profiles_still_due_not_the_same_first_ones(company, owner) -> None:
    grant(company, "100", "stripe:pi_c8")
    with time_machine.travel(NOV_10 + timedelta(hours=12), tick=False):
        profiles = [digest_profile(company, owner, name=f"PBX {n}")[0] for n in range(3)]
    with time_machine.travel(datetime(2026, 12, 10, 6, 0, tzinfo=UTC), tick=False):
        runs = [channels_renew(limit=2)["renewed"] for _ in range(3)]

    assert runs == [2, 1, 0]
    renewed = Charge.objects.filter(idempotency_key__contains="renewal").values_list("item", flat=True)
    assert sorted(renewed) == sorted(f"sip_profiles.sipprofile:{p.public_id}" for p in profiles)


@pytest.mark.django_db(transaction=True)
def test_two_settlement_runs_at_once_pay_a_charge_once() -> None:
    company = CompanyFactory()
    owner = member(company)
    with time_machine.travel(NOV_10, tick=False):
        digest_profile(company, owner)
    grant(company, "100", "stripe:pi_c7")

    run_concurrently(charges_settle, charges_settle)

    assert LedgerTransaction.objects.filter(kind="charge").count() == 1
    assert company_balance(company) == Decimal("100") - 2 * PRICE


def test_credit_arriving_pays_what_is_owed_at_once(company, owner, django_capture_on_commit_callbacks) -> None:
    with time_machine.travel(NOV_10, tick=False):
        profile, _ = digest_profile(company, owner)
    with time_machine.travel(NOV_10 + timedelta(days=7, hours=1), tick=False):
        charges_settle()
    profile.refresh_from_db()
    assert profile.suspended_for_billing

    wire = CreditPurchase.objects.create(
        company=company, amount=Decimal("40"), currency="GBP", method="bank_wire", wire_reference="SM-TEST-0001"
    )
    staff = member(company)  # the actor only; staff rights are checked by the admin view
    with django_capture_on_commit_callbacks(execute=True):
        purchase_confirm_wire(actor=Actor(user=staff), purchase=wire, amount_received=Decimal("40"))

    profile.refresh_from_db()
    assert Charge.objects.get(kind="channels").status == Charge.Status.PAID
    assert profile.status == SipProfile.Status.ACTIVE
    assert not profile.suspended_for_billing
