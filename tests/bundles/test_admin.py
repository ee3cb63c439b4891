from __future__ import annotations

import pytest

from apps.bundles.models import BundlePeriod
from apps.bundles.services import bundles_buy
from apps.core.actor import Actor
from tests.bundles.helpers import credit, new_profile
from tests.conftest import client_as
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_staff_see_bundle_periods_read_only(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=1)
    period = BundlePeriod.objects.get()
    staff = client_as(UserFactory(is_staff=True, is_superuser=True))

    listed = staff.get("/staff/bundles/bundleperiod/")
    shown = staff.get(f"/staff/bundles/bundleperiod/{period.pk}/change/")
    added = staff.get("/staff/bundles/bundleperiod/add/")
    changed = staff.post(f"/staff/bundles/bundleperiod/{period.pk}/change/", {"minutes_used": "1"})

    assert listed.status_code == 200
    assert "Main PBX" in listed.content.decode()
    assert shown.status_code == 200
    assert 'name="minutes_used"' not in shown.content.decode()
    assert added.status_code == 403
    assert changed.status_code == 403
    period.refresh_from_db()
    assert period.minutes_used == 0
