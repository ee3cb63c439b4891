from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from apps.audit.models import AuditEvent
from apps.billing.models import Charge
from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Company, Notice
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.numbers.services import number_buy, number_periods_process
from apps.numbers.tasks import process_number_periods
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.factories import CompanyFactory, member
from tests.helpers.races import run_concurrently
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db

BOUGHT = datetime(2027, 1, 31, 10, 0, tzinfo=UTC)


def bought(company, owner, *, months: int = 3, auto_renew: bool = True, number: str = "+442079460958"):
    OnlineNumberFactory(number=number)
    with time_machine.travel(BOUGHT, tick=False):
        return number_buy(actor=Actor(user=owner), company=company, number=number, months=months, auto_renew=auto_renew)


def run_job_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        return process_number_periods.delay().get()


def test_nothing_happens_before_the_period_ends(company, owner) -> None:
    subscription = bought(company, owner)

    assert run_job_at(datetime(2027, 4, 30, 9, 59, tzinfo=UTC))["renewed"] == 0

    subscription.refresh_from_db()
    assert subscription.current_period_end == datetime(2027, 4, 30, 10, 0, tzinfo=UTC)
    assert Charge.objects.count() == 1


def test_an_auto_renewing_number_is_renewed_and_charged_once_however_often_the_job_runs(company, owner) -> None:
    subscription = bought(company, owner)

    first = run_job_at(datetime(2027, 4, 30, 10, 5, tzinfo=UTC))
    second = run_job_at(datetime(2027, 4, 30, 11, 5, tzinfo=UTC))

    assert (first["renewed"], second["renewed"]) == (1, 0)
    subscription.refresh_from_db()
    # Bought on the 31st: the short April period returns to the 31st in July.
    assert subscription.current_period_start == datetime(2027, 4, 30, 10, 0, tzinfo=UTC)
    assert subscription.current_period_end == datetime(2027, 7, 31, 10, 0, tzinfo=UTC)
    charges = Charge.objects.filter(item=f"numbers.numbersubscription:{subscription.public_id}").order_by(
        "period_start"
    )
    assert [(c.period_start.date().isoformat(), c.period_end.date().isoformat()) for c in charges] == [
        ("2027-01-31", "2027-04-30"),
        ("2027-04-30", "2027-07-31"),
    ]
    assert charges[1].amount == subscription.price
    assert AuditEvent.objects.filter(action="number.renewed", actor_label="system").count() == 1


def test_a_renewal_keeps_the_price_the_number_was_bought_at(company, owner) -> None:
    subscription = bought(company, owner, months=12)
    OnlineNumber.objects.filter(pk=subscription.number_id).update(price_12m_gbp="99.0000")

    run_job_at(datetime(2028, 1, 31, 10, 0, tzinfo=UTC))

    renewal = Charge.objects.order_by("-period_start").first()
    assert renewal is not None
    assert renewal.amount == subscription.price
    assert renewal.period_end == datetime(2029, 1, 31, 10, 0, tzinfo=UTC)


def test_a_job_that_was_down_catches_up_charging_each_missed_period_once(company, owner) -> None:
    subscription = bought(company, owner)

    run_job_at(datetime(2027, 8, 15, tzinfo=UTC))
    run_job_at(datetime(2027, 8, 15, 1, tzinfo=UTC))

    subscription.refresh_from_db()
    assert subscription.current_period_end == datetime(2027, 10, 31, 10, 0, tzinfo=UTC)
    assert Charge.objects.count() == 3  # the purchase, then April–July and July–October


def test_a_number_not_renewed_ends_is_unassigned_and_quarantined_for_30_days(company, owner) -> None:
    subscription = bought(company, owner, auto_renew=False)
    account = BusinessAccount.objects.create(company=company, name="sales.line", display_name="Sales")
    NumberSubscription.objects.filter(pk=subscription.pk).update(business_account=account)
    profile = SipProfile.objects.create(company=company, name="Office", auth_method="ip", caller_id_number=subscription)
    ended_at = datetime(2027, 4, 30, 10, 5, tzinfo=UTC)

    counts = run_job_at(ended_at)

    assert counts["ended"] == 1
    subscription.refresh_from_db()
    assert (subscription.status, subscription.ended_at, subscription.business_account) == ("ended", ended_at, None)
    stock = OnlineNumber.objects.get(pk=subscription.number_id)
    assert stock.status == "quarantine"
    assert stock.quarantine_until == ended_at + timedelta(days=30)
    profile.refresh_from_db()
    assert profile.caller_id_number is None
    assert Notice.objects.filter(company=company, kind="caller_id_removed").exists()
    assert Notice.objects.filter(company=company, kind="number_ended").exists()
    assert Charge.objects.count() == 1  # no renewal


def test_a_quarantined_number_returns_to_stock_after_30_days_and_can_be_bought_again(company, owner) -> None:
    subscription = bought(company, owner, auto_renew=False)
    ended_at = datetime(2027, 4, 30, 10, 5, tzinfo=UTC)
    run_job_at(ended_at)

    still = run_job_at(ended_at + timedelta(days=29, hours=23))
    assert still["back_in_stock"] == 0
    assert OnlineNumber.objects.get(pk=subscription.number_id).status == "quarantine"

    freed = run_job_at(ended_at + timedelta(days=30, minutes=55))

    assert freed["back_in_stock"] == 1
    stock = OnlineNumber.objects.get(pk=subscription.number_id)
    assert (stock.status, stock.quarantine_until) == ("available", None)
    other = CompanyFactory()
    buyer = member(other)
    with time_machine.travel(ended_at + timedelta(days=31), tick=False):
        found = client_as(buyer).get("/api/v1/numbers/available/", {"contains": "+442079460958"}).json()
        assert [row["number"] for row in found["results"]] == ["+442079460958"]
        again = client_as(buyer).post("/api/v1/numbers/", {"number": "+442079460958", "months": 3})
    assert again.status_code == 201
    # History is kept: the first company's ended subscription and the new one.
    assert NumberSubscription.objects.filter(number=stock).count() == 2


def test_turning_auto_renew_off_before_the_end_ends_the_number_instead(company, owner) -> None:
    subscription = bought(company, owner)
    client_as(owner).patch(f"/api/v1/numbers/{subscription.public_id}/", {"auto_renew": False})

    counts = run_job_at(datetime(2027, 5, 1, tzinfo=UTC))

    assert (counts["renewed"], counts["ended"]) == (0, 1)


def test_the_job_works_in_bounded_batches_and_the_next_run_goes_on(company, owner) -> None:
    for index in range(5):
        bought(company, owner, number=f"+4420794600{index:02d}")

    with time_machine.travel(datetime(2027, 5, 1, tzinfo=UTC), tick=False):
        first = number_periods_process(batch_size=2, limit=3)
        second = number_periods_process(batch_size=2, limit=3)

    assert (first["renewed"], second["renewed"]) == (3, 2)


def test_a_second_run_while_one_holds_the_lock_does_nothing(company, owner) -> None:
    bought(company, owner)
    cache.add("lock:numbers-process-periods", "another-worker", 60)

    assert run_job_at(datetime(2027, 5, 1, tzinfo=UTC)) is None

    assert Charge.objects.count() == 1


def test_the_task_has_a_soft_limit_below_its_hard_limit() -> None:
    assert process_number_periods.acks_late is True
    assert process_number_periods.soft_time_limit < process_number_periods.time_limit


@pytest.mark.django_db(transaction=True)
def test_two_workers_processing_periods_at_once_renew_and_charge_once() -> None:
    company = Company.objects.create(name="Twice Ltd", country="GB", currency="GBP")
    subscription = bought(company, member(company))

    def work() -> dict[str, int]:
        return number_periods_process(now=datetime(2027, 5, 1, tzinfo=UTC))

    results = run_concurrently(work, work)

    assert sorted(r["renewed"] for r in results) == [0, 1]
    assert sum(r["failed"] for r in results) == 0
    subscription.refresh_from_db()
    assert subscription.current_period_end == datetime(2027, 7, 31, 10, 0, tzinfo=UTC)
    assert Charge.objects.count() == 2
