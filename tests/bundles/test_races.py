"""Bundles never exceed channels when requests race: the profile row lock decides, the CHECK backs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import time_machine

from apps.billing.models import Charge
from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_buy, bundles_cancel
from apps.core.actor import Actor
from apps.core.exceptions import ApplicationError
from apps.sip_profiles.models import SipProfile
from apps.sip_profiles.services import sip_profile_update
from tests.bundles.helpers import credit, new_profile
from tests.factories import CompanyFactory, member
from tests.helpers.races import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def _race(jobs: list[Callable[[], object]]) -> tuple[int, list[ApplicationError], list[BaseException]]:
    """Run the jobs at once, one thread each; returns (succeeded, refusals, other errors)."""
    outcomes = run_concurrently(*jobs, catch=(BaseException,))
    refused = [o for o in outcomes if isinstance(o, ApplicationError)]
    crashed = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, ApplicationError)]
    return len(outcomes) - len(refused) - len(crashed), refused, crashed


def test_fifty_racing_purchases_never_exceed_the_channels() -> None:
    company = CompanyFactory()
    owner = member(company)
    credit(company, "5000")

    def buy() -> object:
        return bundles_buy(actor=Actor(user=owner), profile=profile, count=1)

    # Early in the profile's first period, so each prorated bundle brings more than 4,900 minutes
    # whatever the time of day the suite runs at.
    with time_machine.travel(datetime(2026, 11, 10, 0, 30, tzinfo=UTC), tick=True):
        profile = new_profile(company, owner, channels=5)
        succeeded, refused, crashed = _race([buy] * 50)

    assert crashed == []
    assert succeeded == 5
    assert len(refused) == 45
    assert {error.code for error in refused} == {"bundles_exceed_channels"}
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 5
    assert Charge.objects.filter(kind="us_bundle").count() == 5
    period = BundlePeriod.objects.get()
    assert period.bundles == 5
    # Every purchase's minutes were added, none lost to a race.
    assert 5 * 4900 < period.minutes_included <= 5 * 5000


def test_lowering_channels_while_bundles_are_bought_never_leaves_more_bundles_than_channels() -> None:
    company = CompanyFactory()
    owner = member(company)
    credit(company, "5000")
    profile = new_profile(company, owner, channels=6)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=1)

    def buy() -> object:
        return bundles_buy(actor=Actor(user=owner), profile=profile, count=1)

    def lower() -> object:
        return sip_profile_update(actor=Actor(user=owner), profile=profile, channels=2)

    def cancel() -> object:
        return bundles_cancel(actor=Actor(user=owner), profile=profile, count=1)

    jobs = [buy] * 12 + [lower] * 3 + [cancel] * 2
    succeeded, refused, crashed = _race(jobs)

    assert crashed == []
    assert {error.code for error in refused} <= {"bundles_exceed_channels", "not_enough_bundles"}
    profile.refresh_from_db()
    assert profile.us_minute_bundles <= profile.channels
    assert profile.channels in (2, 6)
    # Whatever order the requests took, the counts add up.
    bought = Charge.objects.filter(kind="us_bundle").count()
    cancelled = 2 - sum(1 for error in refused if error.code == "not_enough_bundles")
    assert profile.us_minute_bundles == bought - cancelled
    assert succeeded + len(refused) == len(jobs)
    assert not SipProfile.objects.filter(us_minute_bundles__gt=2, channels=2).exists()
