"""The company is told once when a period passes 80% of its minutes and once when it reaches 100%."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundle_periods_notify, bundle_periods_used, bundles_buy
from apps.companies.models import Notice
from apps.core.actor import Actor
from apps.rating.engine import rate_pending
from apps.sip_profiles.services import sip_profile_update
from tests.bundles.helpers import credit, new_profile
from tests.cdrs.factories import cdr_csv, csv_row, load
from tests.factories import CompanyFactory, UserFactory, member
from tests.helpers.races import run_concurrently
from tests.rating.factories import small_deck

pytestmark = pytest.mark.django_db
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


def _period(company, owner, *, used: int) -> BundlePeriod:
    credit(company)
    with time_machine.travel(JAN_1, tick=False):
        profile = new_profile(company, owner, channels=1)
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    BundlePeriod.objects.update(minutes_used=used)
    return BundlePeriod.objects.get()


def _notices(kind: str) -> int:
    return Notice.objects.filter(kind=kind).count()


def test_rating_past_80_and_then_to_100_percent_tells_the_company_once_each(
    company, owner, django_capture_on_commit_callbacks
) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    small_deck()
    period = _period(company, owner, used=3995)
    profile = period.sip_profile

    def call(edge_id: int, minutes: int) -> None:
        start = JAN_1 + timedelta(days=1, minutes=edge_id * 60)
        row = csv_row(
            edge_id,
            profile.public_id,
            callee="+12125550100",
            start=f"{start:%Y-%m-%dT%H:%M:%SZ}",
            answer=f"{start:%Y-%m-%dT%H:%M:%SZ}",
            end=f"{start + timedelta(minutes=minutes):%Y-%m-%dT%H:%M:%SZ}",
            duration=str(minutes * 60),
            billable=str(minutes * 60),
        )
        with django_capture_on_commit_callbacks(execute=True):
            load(cdr_csv(row), staff)
            rate_pending()

    with time_machine.travel(JAN_1 + timedelta(days=3), tick=False):
        call(1, 4)  # 3,999: below 80%
        assert _notices("bundle_minutes_80") == 0
        call(2, 1)  # 4,000: 80%
        call(3, 10)  # 4,010: still past 80%, told already
        assert _notices("bundle_minutes_80") == 1
        assert _notices("bundle_minutes_100") == 0
        call(4, 1000)  # 5,000 used, the remaining 10 minutes at the standard rate
        call(5, 10)  # nothing left
    period.refresh_from_db()
    assert period.minutes_used == 5000
    assert (_notices("bundle_minutes_80"), _notices("bundle_minutes_100")) == (1, 1)
    eighty = Notice.objects.get(kind="bundle_minutes_80")
    assert "Main PBX has used 80% of its US bundle minutes: 1,000 of 5,000 are left" in eighty.message
    assert "standard rate" in Notice.objects.get(kind="bundle_minutes_100").message
    assert period.notified_80_at is not None
    assert period.notified_100_at is not None
    assert len(mail.outbox) >= 2


def test_a_period_that_jumps_to_100_percent_gets_one_notice_not_two(company, owner) -> None:
    period = _period(company, owner, used=5000)

    assert bundle_periods_notify([period.pk]) == 1
    assert bundle_periods_notify([period.pk]) == 0

    assert (_notices("bundle_minutes_80"), _notices("bundle_minutes_100")) == (0, 1)
    period.refresh_from_db()
    assert period.notified_80_at == period.notified_100_at


def test_notices_wait_for_the_rating_transaction_to_commit(company, owner, django_capture_on_commit_callbacks) -> None:
    period = _period(company, owner, used=4500)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        bundle_periods_used([period.pk, period.pk])
    assert _notices("bundle_minutes_80") == 0
    assert len(callbacks) == 1
    callbacks[0]()

    assert _notices("bundle_minutes_80") == 1


def test_buying_more_minutes_lets_the_company_be_told_again(company, owner) -> None:
    period = _period(company, owner, used=4100)
    bundle_periods_notify([period.pk])
    profile = sip_profile_update(actor=Actor(user=owner), profile=period.sip_profile, channels=2)

    with time_machine.travel(JAN_1 + timedelta(days=1), tick=False):
        bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    period.refresh_from_db()
    assert period.percent_used < 80
    assert period.notified_80_at is None

    BundlePeriod.objects.filter(pk=period.pk).update(minutes_used=period.minutes_included)
    bundle_periods_notify([period.pk])
    assert (_notices("bundle_minutes_80"), _notices("bundle_minutes_100")) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_send_each_notice_exactly_once() -> None:
    company = CompanyFactory()
    owner = member(company)
    period = _period(company, owner, used=4200)

    sent = run_concurrently(*[lambda: bundle_periods_notify([period.pk])] * 12)

    assert sum(sent) == 1
    assert _notices("bundle_minutes_80") == 1
