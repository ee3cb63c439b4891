"""Monthly renewal on the profile's renewal day, and what an unpaid bundle charge does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from apps.billing.charges.services import charges_settle
from apps.billing.ledger.allocations import credit_allocate
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import Charge
from apps.bundles.models import BundlePeriod
from apps.bundles.selectors import bundle_minutes_left
from apps.bundles.services import bundles_buy, bundles_renew
from apps.bundles.tasks import renew_bundles
from apps.cdrs.models import Cdr, CdrRating, PendingCdr
from apps.companies.models import Notice
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.rating.engine import rate_pending
from apps.rating.tasks import rate_cdrs
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.tasks import renew_channels
from tests.bundles.helpers import BUNDLE_PRICE, credit, new_profile, period_of
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.factories import UserFactory
from tests.rating.factories import small_deck

pytestmark = pytest.mark.django_db


def _used(profile: SipProfile, start: datetime, minutes: int) -> None:
    # What rating does to a period (apps.rating.engine._add_minutes); the engine has its own tests.
    BundlePeriod.objects.filter(sip_profile=profile, period_start=start).update(minutes_used=minutes)


def test_minutes_reset_at_renewal_and_unused_ones_expire(company, owner) -> None:
    nov_10, dec_10 = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC)
    credit(company)
    with time_machine.travel(nov_10 + timedelta(hours=1), tick=False):
        profile = new_profile(company, owner, channels=2)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=2)
    _used(profile, nov_10, 3000)
    with time_machine.travel(datetime(2026, 12, 9, 23, 59, tzinfo=UTC), tick=False):
        assert bundles_renew()["renewed"] == 0  # the period has not ended
        assert bundle_minutes_left(profile=profile) == period_of(profile, nov_10).minutes_included - 3000

    with time_machine.travel(dec_10 + timedelta(seconds=30), tick=False):
        first = bundles_renew()
        again = bundles_renew()
        left_now = bundle_minutes_left(profile=profile)

    assert (first["renewed"], again["renewed"]) == (1, 0)
    new = period_of(profile, dec_10)
    assert (new.period_end, new.bundles, new.minutes_included, new.minutes_used) == (
        datetime(2027, 1, 10, tzinfo=UTC),
        2,
        10_000,
        0,
    )
    assert left_now == 10_000  # the 3,000 used and the rest of November's minutes are gone
    assert period_of(profile, nov_10).minutes_used == 3000  # the old period is kept as it was
    renewal = Charge.objects.get(idempotency_key=f"bundle:{profile.public_id}:2026-12-10")
    assert (renewal.amount, renewal.quantity, renewal.status) == (2 * BUNDLE_PRICE, 2, Charge.Status.PAID)
    assert (renewal.period_start, renewal.period_end) == (dec_10, datetime(2027, 1, 10, tzinfo=UTC))


def test_renewal_crosses_the_year_end_on_the_renewal_day(company, owner) -> None:
    credit(company)
    with time_machine.travel(datetime(2026, 12, 15, 8, tzinfo=UTC), tick=False):
        profile = new_profile(company, owner, channels=1)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    with time_machine.travel(datetime(2027, 1, 14, 23, 0, tzinfo=UTC), tick=False):
        assert bundles_renew()["renewed"] == 0
    with time_machine.travel(datetime(2027, 1, 15, 0, 0, 1, tzinfo=UTC), tick=False):
        assert bundles_renew()["renewed"] == 1

    assert list(BundlePeriod.objects.order_by("period_start").values_list("period_start", "period_end")) == [
        (datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2027, 1, 15, tzinfo=UTC), datetime(2027, 2, 15, tzinfo=UTC)),
    ]
    assert Charge.objects.filter(idempotency_key=f"bundle:{profile.public_id}:2027-01-15").exists()


def test_a_renewal_day_of_28_renews_on_the_28th_also_in_february(company, owner) -> None:
    credit(company)
    with time_machine.travel(datetime(2027, 1, 30, 10, tzinfo=UTC), tick=False):
        profile = new_profile(company, owner, channels=1)  # created on the 30th: renews on the 28th
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    assert profile.renewal_day == 28
    first = BundlePeriod.objects.get()
    assert (first.period_start, first.period_end) == (
        datetime(2027, 1, 28, tzinfo=UTC),
        datetime(2027, 2, 28, tzinfo=UTC),
    )
    with time_machine.travel(datetime(2027, 2, 28, 6, tzinfo=UTC), tick=False):
        result = renew_bundles.apply().get()  # the scheduled jobs: bundles, then channels
        renew_channels.apply().get()
    with time_machine.travel(datetime(2027, 3, 28, 6, tzinfo=UTC), tick=False):
        bundles_renew()

    assert result["bundles_renewed"] == 1
    assert list(BundlePeriod.objects.order_by("period_start").values_list("period_start", flat=True)) == [
        datetime(2027, 1, 28, tzinfo=UTC),
        datetime(2027, 2, 28, tzinfo=UTC),
        datetime(2027, 3, 28, tzinfo=UTC),
    ]
    assert Charge.objects.filter(kind="us_bundle").count() == 3


def test_deleted_profiles_and_profiles_without_bundles_do_not_renew(company, owner) -> None:
    with time_machine.travel(datetime(2026, 11, 10, tzinfo=UTC), tick=False):
        new_profile(company, owner, channels=1, name="No bundles")

    with time_machine.travel(datetime(2026, 12, 10, 1, tzinfo=UTC), tick=False):
        assert bundles_renew() == {"renewed": 0, "failed": 0}
    assert not BundlePeriod.objects.exists()


def _us_call(edge_id: int, profile: SipProfile, start: datetime, seconds: int) -> str:
    end = start + timedelta(seconds=seconds + 5)
    return csv_row(
        edge_id,
        profile.public_id,
        callee="+12125550100",
        start=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        answer=(start + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration=str(seconds + 5),
        billable=str(seconds),
    )


def test_an_unpaid_bundle_is_suspended_after_its_grace_period_and_paying_resumes_it(company, owner) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    small_deck()  # US calls at 0.004/min in GBP, from 1 Jan 2026
    jan_1 = datetime(2026, 1, 1, tzinfo=UTC)
    with time_machine.travel(jan_1 + timedelta(hours=1), tick=False):
        profile = new_profile(company, owner, channels=2)
        credit(company, str(Charge.objects.get(kind="channels").amount))  # the channel, not the bundle
        charges_settle()
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    bundle_charge = Charge.objects.get(kind="us_bundle")
    assert bundle_charge.status == Charge.Status.UNPAID
    assert Notice.objects.filter(kind="charge_unpaid").exists()

    # In the grace period the minutes are there.
    with time_machine.travel(jan_1 + timedelta(days=3), tick=False):
        load(cdr_csv(_us_call(1, profile, jan_1 + timedelta(days=2), 120)), staff)
        rate_pending()
    assert CdrRating.objects.get(cdr__edge_id=1).bundle_minutes == 2

    with time_machine.travel(jan_1 + timedelta(days=7, hours=2), tick=False):
        assert charges_settle()["suspended"] == 1
        assert bundle_minutes_left(profile=profile) == 0
        load(cdr_csv(_us_call(2, profile, jan_1 + timedelta(days=7, hours=1, minutes=30), 120)), staff)
        rate_pending()
    period = BundlePeriod.objects.get()
    assert period.suspended
    suspended_call = CdrRating.objects.get(cdr__edge_id=2)
    assert (suspended_call.bundle_minutes, suspended_call.cost) == (0, Decimal("0.0080"))  # the standard rate
    profile.refresh_from_db()
    assert profile.status == SipProfile.Status.ACTIVE  # only the bundle is suspended, not the profile
    with (
        time_machine.travel(jan_1 + timedelta(days=7, hours=3), tick=False),
        pytest.raises(ApplicationError) as refused,
    ):
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    assert refused.value.code == "bundles_suspended"

    credit(company, "50")
    with time_machine.travel(jan_1 + timedelta(days=9), tick=False):
        assert charges_settle()["paid"] == 1
        load(cdr_csv(_us_call(3, profile, jan_1 + timedelta(days=8, hours=12), 60)), staff)
        rate_pending()
    period.refresh_from_db()
    assert not period.suspended
    assert period.minutes_used == 3
    assert CdrRating.objects.get(cdr__edge_id=3).bundle_minutes == 1
    assert Charge.objects.get(kind="us_bundle").status == Charge.Status.PAID


def test_an_unpaid_renewal_suspends_only_the_new_period(company, owner) -> None:
    nov_10, dec_10 = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC)
    credit(company)
    with time_machine.travel(nov_10, tick=False):
        profile = new_profile(company, owner, channels=1)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    # Everything left goes to the profile, so the renewal cannot be paid.
    credit_allocate(actor=Actor(user=owner), profile=profile, amount=company_balance(company), key="spend-all")

    with time_machine.travel(dec_10 + timedelta(minutes=5), tick=False):
        renew_bundles.apply().get()
        renew_channels.apply().get()
    with time_machine.travel(dec_10 + timedelta(days=7, minutes=10), tick=False):
        charges_settle()

    assert period_of(profile, dec_10).suspended
    assert not period_of(profile, nov_10).suspended
    renewal = Charge.objects.get(idempotency_key=f"bundle:{profile.public_id}:2026-12-10")
    assert renewal.status == Charge.Status.SUSPENDED
    assert Notice.objects.filter(kind="charge_suspended", message__contains="US minute bundle").exists()


def test_the_rating_job_starts_a_due_period_before_it_rates_the_calls_made_in_it(company, owner) -> None:
    nov_10, dec_10 = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC)
    credit(company)
    small_deck(effective_from=nov_10 - timedelta(days=30))
    with time_machine.travel(nov_10 + timedelta(hours=1), tick=False):
        profile = new_profile(company, owner, channels=1)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    # A call to New York a minute after midnight on the renewal day, rated before the
    # renewal job has come round: the job renews first, so the call uses the new minutes.
    call = Cdr.objects.create(
        node="edge-1",
        edge_id=1,
        call_id="renewal@pbx",
        sip_profile=profile,
        company=company,
        direction="outbound",
        caller="+442079460958",
        callee="+12125550123",
        started_at=dec_10 + timedelta(minutes=1),
        answered_at=dec_10 + timedelta(minutes=1),
        ended_at=dec_10 + timedelta(minutes=3),
        duration_seconds=120,
        billable_seconds=120,
        sip_code=200,
        disposition="answered",
        auth_method="registration",
        source_address="198.51.100.7",
    )
    PendingCdr.objects.create(cdr=call)
    with time_machine.travel(dec_10 + timedelta(minutes=4), tick=False):
        result = rate_cdrs()

    assert result is not None
    assert result["cdrs"] == 1
    rating = CdrRating.objects.get(cdr=call)
    assert (rating.status, rating.bundle_minutes, rating.cost) == ("bundle", 2, Decimal("0"))
    assert period_of(profile, dec_10).minutes_used == 2
