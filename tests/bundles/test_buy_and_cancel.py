from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from apps.audit.models import AuditEvent
from apps.billing.ledger.selectors import company_balance
from apps.billing.ledger.services import platform_account
from apps.billing.models import Charge, LedgerAccount
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_buy, bundles_cancel, bundles_renew, prorated_minutes
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_update
from tests.bundles.helpers import BUNDLE_PRICE, credit, new_profile, period_of

pytestmark = pytest.mark.django_db
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, tzinfo=UTC)
# 14.5 of the period's 30 days are left: 29/60 of it.
NOV_25_NOON = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_a_bundle_bought_mid_period_gives_prorated_minutes_and_is_charged_prorated(company, owner) -> None:
    credit(company, "500")
    with time_machine.travel(NOV_10 + timedelta(hours=9), tick=False):
        profile = new_profile(company, owner, channels=3)
    before = company_balance(company)

    with time_machine.travel(NOV_25_NOON, tick=False):
        bundles_buy(actor=Actor(user=owner), profile=profile, count=2)

    profile.refresh_from_db()
    assert profile.us_minute_bundles == 2
    period = period_of(profile, NOV_10)
    assert period.period_end == DEC_10
    # ceil(5000 × 29/60) = ceil(2416.67) = 2417 minutes a bundle.
    assert (period.bundles, period.minutes_included, period.minutes_used) == (2, 2 * 2417, 0)
    charge = Charge.objects.get(kind=Charge.Kind.US_BUNDLE)
    # 2 × 31.00 × 29/60 = 29.9667, rounded half-up once.
    assert charge.amount == Decimal("29.9667")
    assert (charge.quantity, charge.unit_price, charge.status) == (2, BUNDLE_PRICE, Charge.Status.PAID)
    assert (charge.period_start, charge.period_end) == (NOV_25_NOON, DEC_10)
    assert charge.item == f"bundles.bundleperiod:{period.pk}"
    assert company_balance(company) == before - Decimal("29.9667")
    assert platform_account(LedgerAccount.Kind.REVENUE_BUNDLES, "GBP").balance == Decimal("29.9667")
    event = AuditEvent.objects.get(action="bundles.bought")
    assert event.changes["us_minute_bundles"] == {"before": 0, "after": 2}


def test_prorated_minutes_round_up_and_a_whole_period_gives_5000() -> None:
    assert prorated_minutes(at=NOV_10, period_start=NOV_10, period_end=DEC_10) == 5000
    assert prorated_minutes(at=DEC_10 - timedelta(seconds=1), period_start=NOV_10, period_end=DEC_10) == 1
    assert prorated_minutes(at=NOV_25_NOON, period_start=NOV_10, period_end=DEC_10) == 2417


def test_a_second_purchase_in_the_period_adds_to_the_same_period(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    with time_machine.travel(NOV_25_NOON, tick=False):
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)

    period = BundlePeriod.objects.get()
    assert (period.bundles, period.minutes_included) == (2, 5000 + 2417)
    assert sorted(Charge.objects.filter(kind="us_bundle").values_list("amount", flat=True)) == [
        Decimal("14.9833"),
        BUNDLE_PRICE,
    ]


def test_more_bundles_than_channels_are_refused_with_a_clear_error(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=2)

    with pytest.raises(ApplicationError) as refused:
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)

    assert refused.value.code == "bundles_exceed_channels"
    assert "3 US minute bundles need at least 3 channels" in refused.value.errors["count"][0]
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 2
    assert Charge.objects.filter(kind="us_bundle").count() == 1


def test_the_database_refuses_more_bundles_than_channels_whatever_the_code_does(company, owner) -> None:
    profile = new_profile(company, owner, channels=2)

    with pytest.raises(IntegrityError), transaction.atomic():
        SipProfile.objects.filter(pk=profile.pk).update(us_minute_bundles=3)


def test_lowering_channels_below_the_bundles_is_refused_naming_the_field(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=3)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=2)

    with pytest.raises(ApplicationError) as refused:
        sip_profile_update(actor=Actor(user=owner), profile=profile, channels=1)
    sip_profile_update(actor=Actor(user=owner), profile=profile, channels=2)

    assert refused.value.code == "bundles_exceed_channels"
    assert "needs at least 2 channels" in refused.value.errors["channels"][0]
    profile.refresh_from_db()
    assert (profile.channels, profile.us_minute_bundles) == (2, 2)


def test_bundles_cannot_be_set_through_the_plain_profile_update(company, owner) -> None:
    profile = new_profile(company, owner, channels=3)

    with pytest.raises(ApplicationError) as refused:
        sip_profile_update(actor=Actor(user=owner), profile=profile, us_minute_bundles=2)

    assert refused.value.code == "bundles_not_updatable"
    assert "us_minute_bundles" in refused.value.errors
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 0


def test_a_profile_created_with_bundles_buys_them_with_their_charge(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10 + timedelta(hours=12), tick=False):
        profile = new_profile(company, owner, channels=2, us_minute_bundles=1)

    profile.refresh_from_db()
    assert profile.us_minute_bundles == 1
    period = period_of(profile, NOV_10)
    # 29.5 of 30 days: ceil(5000 × 59/60) = 4917.
    assert period.minutes_included == 4917
    charge = Charge.objects.get(kind="us_bundle")
    assert charge.amount == Decimal("30.4833")


def test_a_cancelled_bundle_keeps_its_minutes_until_the_period_ends_and_does_not_renew(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=2)
    with time_machine.travel(NOV_25_NOON, tick=False):
        bundles_cancel(actor=Actor(user=owner), profile=profile, count=1)

    profile.refresh_from_db()
    assert profile.us_minute_bundles == 1
    period = period_of(profile, NOV_10)
    assert (period.minutes_included, period.minutes_left) == (10_000, 10_000)  # nothing taken back
    assert Charge.objects.filter(kind="us_bundle").count() == 1  # and nothing refunded
    assert AuditEvent.objects.filter(action="bundles.cancelled").exists()

    with time_machine.travel(DEC_10 + timedelta(minutes=1), tick=False):
        assert bundles_renew() == {"renewed": 1, "failed": 0}
    renewed = period_of(profile, DEC_10)
    assert (renewed.bundles, renewed.minutes_included) == (1, 5000)
    assert Charge.objects.get(idempotency_key=f"bundle:{profile.public_id}:2026-12-10").amount == BUNDLE_PRICE


def test_cancelling_every_bundle_ends_renewal_and_more_than_held_is_refused(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    with pytest.raises(ApplicationError) as refused:
        bundles_cancel(actor=Actor(user=owner), profile=profile, count=2)
    bundles_cancel(actor=Actor(user=owner), profile=profile, count=1)

    assert refused.value.code == "not_enough_bundles"
    with time_machine.travel(DEC_10 + timedelta(hours=1), tick=False):
        assert bundles_renew()["renewed"] == 0
    assert BundlePeriod.objects.count() == 1


def test_the_same_form_key_buys_once(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=3)

    bundles_buy(actor=Actor(user=owner), profile=profile, count=1, key="form-1")
    bundles_buy(actor=Actor(user=owner), profile=profile, count=1, key="form-1")
    bundles_buy(actor=Actor(user=owner), profile=profile, count=1, key="form-2")

    profile.refresh_from_db()
    assert profile.us_minute_bundles == 2
    assert Charge.objects.filter(kind="us_bundle").count() == 2


@pytest.mark.parametrize("count", [0, -1, 301, "two", None])
def test_the_count_is_a_whole_number_from_1_to_300(company, owner, count) -> None:
    profile = new_profile(company, owner, channels=3)

    with pytest.raises(ApplicationError) as refused:
        bundles_buy(actor=Actor(user=owner), profile=profile, count=count)

    assert "count" in refused.value.errors


def test_buying_on_the_renewal_day_before_the_job_renews_the_held_bundles_first(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    # Six hours into the new period, before any renewal run: half a day of 31 is gone.
    with time_machine.travel(DEC_10 + timedelta(hours=6), tick=False):
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
        assert bundles_renew()["renewed"] == 0

    period = period_of(profile, DEC_10)
    # Dec 10 to Jan 10 is 31 days; 30.75 left: ceil(5000 × 123/124) = 4960.
    assert (period.bundles, period.minutes_included) == (2, 5000 + 4960)
    keys = set(Charge.objects.filter(kind="us_bundle").values_list("idempotency_key", flat=True))
    assert f"bundle:{profile.public_id}:2026-12-10" in keys
    assert len(keys) == 3
