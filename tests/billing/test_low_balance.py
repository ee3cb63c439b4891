"""Low-balance notices: a company is told once when a SIP profile's balance runs low and once
when it reaches zero, and told again only after the balance went back above."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.billing.models import ProfileBalanceAlert
from apps.billing.recharge.profile import profile_auto_recharge_update
from apps.bundles.models import BundlePeriod
from apps.companies.models import Company, Notice, Role
from apps.core.actor import Actor
from apps.rating import tasks
from apps.rating.low_balance import EMPTY, LOW, low_balance_notices_send
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_delete
from tests.factories import member, move_profile_balance
from tests.sip_profiles.factories import digest_profile

pytestmark = pytest.mark.django_db


move = move_profile_balance


def run() -> dict[str, int]:
    return low_balance_notices_send(now=timezone.now())


def notices(company: Company, kind: str | None = None) -> list[str]:
    # Creating a profile also leaves a notice of its first (unpaid) channel charge: not ours.
    found = Notice.objects.for_company(company).filter(kind__in=[kind] if kind else [LOW, EMPTY])
    found = found.order_by("created_at", "pk")
    return list(found.values_list("message", flat=True))


@pytest.fixture
def profile(company: Company, owner: Any) -> SipProfile:
    profile, _ = digest_profile(company, owner)
    return profile


@pytest.fixture
def billing_member(company: Company) -> Any:
    return member(company, Role.BILLING, email="billing@example.com")


def test_a_balance_below_the_default_threshold_is_told_once_to_admins_and_billing(
    company, owner, billing_member, profile, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    move(profile, "20.00")
    move(profile, "-16.50")  # 3.50 left, below 5.00

    with django_capture_on_commit_callbacks(execute=True):
        assert run() == {"rearmed": 0, "low": 1, "empty": 0}
    with django_capture_on_commit_callbacks(execute=True):
        assert run() == {"rearmed": 0, "low": 0, "empty": 0}  # the next run says nothing more

    currency = company.currency  # the threshold is the default, 5.00 in any currency
    assert notices(company) == [
        f"SIP profile “Main PBX” has 3.50 {currency} left, below 5.00 {currency}. "
        "Allocate credit to it before it runs out: paid outbound calls stop at zero."
    ]
    assert Notice.objects.get(kind=LOW).level == Notice.Level.WARNING
    recipients = sorted(address for mail in mailoutbox for address in mail.to)
    assert recipients == sorted([owner.email, billing_member.email])
    assert all("has 3.50" in mail.body for mail in mailoutbox)


def test_a_balance_above_the_threshold_or_never_funded_is_not_told(company, owner, profile) -> None:
    move(profile, "5.00")  # exactly the threshold is not below it
    digest_profile(company, owner, name="Never funded")  # balance 0, but no credit was ever given

    assert run() == {"rearmed": 0, "low": 0, "empty": 0}
    assert notices(company) == []


def test_reaching_zero_is_told_once_and_says_paid_calls_stop(
    company, profile, django_capture_on_commit_callbacks, mailoutbox
) -> None:
    move(profile, "4.00")
    run()  # low
    move(profile, "-4.13")  # rating overdrew it

    with django_capture_on_commit_callbacks(execute=True):
        assert run() == {"rearmed": 0, "low": 0, "empty": 1}
    assert run() == {"rearmed": 0, "low": 0, "empty": 0}

    assert notices(company, EMPTY) == [
        f"SIP profile “Main PBX” has no credit left (-0.13 {company.currency}): its paid outbound calls are "
        "refused until you allocate credit to it. Inbound calls are not affected."
    ]
    assert Notice.objects.get(kind=EMPTY).level == Notice.Level.ERROR
    assert len(mailoutbox) == 1


def test_falling_straight_to_zero_sends_only_the_zero_notice(company, profile) -> None:
    move(profile, "10.00")
    move(profile, "-10.00")

    assert run() == {"rearmed": 0, "low": 0, "empty": 1}

    # Credit back to below the threshold: zero is re-armed, but the low notice counts as sent.
    move(profile, "2.00")
    assert run() == {"rearmed": 1, "low": 0, "empty": 0}
    assert list(Notice.objects.filter(kind__in=[LOW, EMPTY]).values_list("kind", flat=True)) == [EMPTY]


def test_the_zero_notice_mentions_bundle_minutes_that_still_work(company, profile) -> None:
    now = timezone.now()
    BundlePeriod.objects.create(
        sip_profile=profile,
        company=company,
        bundles=1,
        period_start=now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        period_end=datetime(now.year + 1, 1, 1, tzinfo=UTC),
        minutes_included=5000,
        minutes_used=4000,
    )
    move(profile, "1.00")
    move(profile, "-1.00")

    run()

    assert "Calls to US landlines and mobiles still use its 1000 bundle minutes left." in notices(company, EMPTY)[0]


def test_a_notice_is_told_again_only_after_the_balance_went_back_above(company, profile) -> None:
    move(profile, "4.00")
    assert run()["low"] == 1
    move(profile, "0.50")  # 4.50: still below, still told
    assert run() == {"rearmed": 0, "low": 0, "empty": 0}

    move(profile, "10.00")  # 14.50: re-armed
    assert run() == {"rearmed": 1, "low": 0, "empty": 0}
    assert ProfileBalanceAlert.objects.get(sip_profile=profile).low_notified_at is None

    move(profile, "-11.00")  # 3.50 again: told again
    assert run()["low"] == 1
    assert len(notices(company, LOW)) == 2


def test_with_auto_recharge_on_its_threshold_is_the_low_balance_threshold(company, owner, profile) -> None:
    profile_auto_recharge_update(
        actor=Actor(user=owner), profile=profile, enabled=True, amount="20", threshold="10", monthly_limit="100"
    )
    move(profile, "8.00")  # above 5.00 but below the auto-recharge threshold it was not recharged at

    assert run()["low"] == 1
    assert f"below 10.00 {company.currency}" in notices(company, LOW)[0]

    profile_auto_recharge_update(
        actor=Actor(user=owner), profile=profile, enabled=False, amount="20", threshold="10", monthly_limit="100"
    )
    assert run() == {"rearmed": 1, "low": 0, "empty": 0}  # back to 5.00: 8.00 is above it


def test_a_deleted_profile_is_not_watched(company, owner, profile) -> None:
    move(profile, "1.00")
    move(profile, "-1.00")
    sip_profile_delete(actor=Actor(user=owner), profile=profile)

    assert run() == {"rearmed": 0, "low": 0, "empty": 0}
    assert notices(company) == []


def test_one_run_handles_at_most_its_limit_and_the_next_goes_on(company, owner) -> None:
    for n in range(5):
        funded, _ = digest_profile(company, owner, name=f"PBX {n}")
        move(funded, "1.00")

    assert low_balance_notices_send(now=timezone.now(), batch_size=2, limit=3)["low"] == 3
    assert low_balance_notices_send(now=timezone.now(), batch_size=2, limit=3)["low"] == 2
    assert len(notices(company, LOW)) == 5


def test_the_task_runs_the_notices(company, profile) -> None:
    move(profile, "1.00")

    assert tasks.low_balance_notices.apply().get() == {"rearmed": 0, "low": 1, "empty": 0}
    assert tasks.low_balance_notices.apply().get() == {"rearmed": 0, "low": 0, "empty": 0}


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_tell_the_company_exactly_once(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    move(profile, "1.00")
    alert = ProfileBalanceAlert.objects.create(sip_profile=profile, company=company)
    errors: list[BaseException] = []
    results: list[dict[str, int]] = []

    def sweep() -> None:
        try:
            results.append(run())
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    # Hold the alert row so that both runs have decided to send and wait at their claim.
    with transaction.atomic():
        ProfileBalanceAlert.objects.select_for_update().get(pk=alert.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_for_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_for_locks() == 2
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r["low"] for r in results) == [0, 1]
    assert len(notices(company, LOW)) == 1


def _waiting_for_locks() -> int:
    with connection.cursor() as cursor:
        # Statistics views are read once per transaction unless the snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])
