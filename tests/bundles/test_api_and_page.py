"""Bundle minutes in the API and on the profile's page; buying and cancelling from both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.billing.models import Charge
from apps.bundles.models import BundlePeriod
from apps.companies.models import Role
from apps.sip_profiles.models import SipProfile
from tests.bundles.helpers import credit, new_profile
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.confirm import confirmation
from tests.helpers.queries import SIGNED_IN, expect_queries

pytestmark = pytest.mark.django_db
NOV_10 = datetime(2026, 11, 10, tzinfo=UTC)
NOV_25_NOON = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _url(profile: SipProfile) -> str:
    return f"/api/v1/sip-profiles/{profile.public_id}/bundles/"


def test_the_api_shows_the_bundles_and_this_periods_minutes(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3)
    client = client_as(owner)
    with time_machine.travel(NOV_25_NOON, tick=False):
        empty = client.get(_url(profile)).json()
        bought = client.post(_url(profile), {"action": "buy", "count": 2}, format="json")
    BundlePeriod.objects.update(minutes_used=834)

    with (
        time_machine.travel(NOV_25_NOON + timedelta(hours=1), tick=False),
        expect_queries(*SIGNED_IN, "the profile", "the bundle price", "the current period"),
    ):
        shown = client.get(_url(profile))

    assert (empty["bundles"], empty["period"], empty["minutes_left"]) == (0, None, 0)
    assert empty["minutes_if_bought_now"] == 2417
    assert empty["price_if_bought_now"] == "14.9833"
    assert bought.status_code == 200
    body = shown.json()
    assert body["bundles"] == 2
    assert body["max_bundles"] == 3
    assert (body["minutes_included"], body["minutes_used"], body["minutes_left"]) == (4834, 834, 4000)
    assert body["period"]["start"] == "2026-11-10T00:00:00Z"
    assert body["period"]["end"] == body["renews_at"] == "2026-12-10T00:00:00Z"
    assert body["period"]["percent_used"] == 17
    assert body["suspended"] is False
    assert (body["monthly_price"], body["currency"]) == ("31.0000", "GBP")


def test_the_api_refuses_more_bundles_than_channels_with_the_field_and_code(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2)
    client = client_as(owner)

    refused = client.post(_url(profile), {"action": "buy", "count": 3}, format="json")
    too_many_cancelled = client.post(_url(profile), {"action": "cancel", "count": 1}, format="json")
    invalid = client.post(_url(profile), {"action": "buy", "count": 0}, format="json")

    assert refused.status_code == 400
    assert refused.json()["code"] == "bundles_exceed_channels"
    assert "count" in refused.json()["errors"]
    assert too_many_cancelled.json()["code"] == "not_enough_bundles"
    assert invalid.status_code == 400
    assert "count" in invalid.json()["errors"]
    assert not Charge.objects.filter(kind="us_bundle").exists()


def test_an_idempotency_key_makes_a_retried_purchase_buy_once(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=3)
    client = client_as(owner)
    headers = {"HTTP_IDEMPOTENCY_KEY": "9a1c6f4e-retry"}

    first = client.post(_url(profile), {"action": "buy", "count": 1}, format="json", **headers)
    again = client.post(_url(profile), {"action": "buy", "count": 1}, format="json", **headers)
    other = client.post(_url(profile), {"action": "buy", "count": 2}, format="json", **headers)

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 1
    assert Charge.objects.filter(kind="us_bundle").count() == 1


def test_the_api_cancels_and_viewers_may_only_look(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=3, us_minute_bundles=2)
    viewer = client_as(member(company, Role.VIEWER))

    looked = viewer.get(_url(profile))
    tried = viewer.post(_url(profile), {"action": "cancel", "count": 1}, format="json")
    cancelled = client_as(owner).post(_url(profile), {"action": "cancel", "count": 1}, format="json")

    assert looked.status_code == 200
    assert tried.status_code == 403
    assert cancelled.status_code == 200
    assert cancelled.json()["bundles"] == 1
    assert cancelled.json()["minutes_included"] == BundlePeriod.objects.get().minutes_included > 0


def test_the_profile_api_no_longer_sets_bundles_and_lowering_channels_is_refused(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2, us_minute_bundles=2)
    client = client_as(owner)

    set_directly = client.patch(f"/api/v1/sip-profiles/{profile.public_id}/", {"us_minute_bundles": 0}, format="json")
    lowered = client.patch(f"/api/v1/sip-profiles/{profile.public_id}/", {"channels": 1}, format="json")

    assert set_directly.status_code == 400
    assert "/bundles/" in set_directly.json()["errors"]["us_minute_bundles"][0]
    assert lowered.status_code == 400
    assert lowered.json()["code"] == "bundles_exceed_channels"
    assert "Cancel bundles first" in lowered.json()["errors"]["channels"][0]
    profile.refresh_from_db()
    assert (profile.channels, profile.us_minute_bundles) == (2, 2)


def test_another_companys_profile_bundles_are_404(company, owner, other_company) -> None:
    theirs = new_profile(other_company, member(other_company), channels=2)

    assert client_as(owner).get(_url(theirs)).status_code == 404
    assert client_as(owner).post(_url(theirs), {"action": "buy", "count": 1}, format="json").status_code == 404
    assert not Charge.objects.filter(kind="us_bundle").exists()


# --- The profile's page --------------------------------------------------------------


def test_the_profile_page_shows_the_minutes_used_and_left(company, owner) -> None:
    credit(company)
    with time_machine.travel(NOV_10, tick=False):
        profile = new_profile(company, owner, channels=3, us_minute_bundles=1)
    BundlePeriod.objects.update(minutes_used=1250)

    with time_machine.travel(NOV_25_NOON, tick=False):
        html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/").content.decode()

    assert 'id="profile-bundles"' in html
    assert "<strong>3750</strong> left of 5000 · 1250 used (25%)" in html
    assert "1 of at most 3 (one per channel)" in html
    assert "A bundle bought now gives 2417 minutes" in html
    assert 'name="action" value="buy"' in html


def test_buying_from_the_page_redirects_and_errors_are_form_errors(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2)
    client = client_as(owner)
    page = f"/sip-profiles/{profile.public_id}/"

    asked = client.post(page, {"action": "buy", "count": "1", "key": "k1", "once": "o1"}, format="multipart")
    _, fields = confirmation(asked.content.decode())
    bought = client.post(page, fields, format="multipart")
    resubmitted = client.post(page, fields, format="multipart")
    refused = client.post(page, {"action": "buy", "count": "5", "key": "k2"}, format="multipart")

    assert bought.status_code == resubmitted.status_code == 302
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 1
    assert refused.status_code == 400
    html = refused.content.decode()
    assert 'id="bundle-count-error"' in html
    assert "6 US minute bundles need at least 6 channels" in html
    assert Charge.objects.filter(kind="us_bundle").count() == 1


def test_with_htmx_the_page_swaps_only_the_bundles_card(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=2, us_minute_bundles=1)
    client = client_as(owner)
    page = f"/sip-profiles/{profile.public_id}/"

    asked = client.post(
        page, {"action": "cancel", "count": "1", "key": "k3"}, format="multipart", HTTP_HX_REQUEST="true"
    )
    _, fields = confirmation(asked.content.decode())
    cancelled = client.post(page, fields, format="multipart", HTTP_HX_REQUEST="true")
    refused = client.post(
        page, {"action": "cancel", "count": "1", "key": "k4"}, format="multipart", HTTP_HX_REQUEST="true"
    )

    html = asked.content.decode()
    assert asked.status_code == 200
    assert html.lstrip().startswith('<div class="card" id="profile-bundles"')
    assert "<html" not in html
    # Done, the page is the answer (a redirect htmx follows): the card and the figures come from it.
    assert cancelled.status_code == 302
    assert "1 US minute bundle cancelled: this period&#x27;s minutes stay until it ends." in (
        client.get(cancelled["Location"]).content.decode()
    )
    assert refused.status_code == 200
    assert "has no US minute bundles to cancel" in refused.content.decode()
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 0


def test_a_cancel_sent_twice_from_the_page_cancels_once(company, owner) -> None:
    credit(company)
    profile = new_profile(company, owner, channels=3, us_minute_bundles=3)
    client = client_as(owner)
    page = f"/sip-profiles/{profile.public_id}/"
    assert 'name="held" value="3"' in client.get(page).content.decode()

    form = {"action": "cancel", "count": "1", "key": "k5", "held": "3"}
    _, fields = confirmation(client.post(page, form, format="multipart").content.decode())
    cancelled = client.post(page, fields, format="multipart")
    again = client.post(page, fields, format="multipart")  # the same form: it was done once
    stale = client.post(page, {**fields, "once": "another"}, format="multipart")  # a form shown before it

    assert cancelled.status_code == again.status_code == 302
    assert stale.status_code == 400
    assert "changed meanwhile: it now has 2 US minute bundles. Nothing was cancelled" in stale.content.decode()
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 2


def test_viewers_see_the_minutes_but_no_form_and_cannot_post(company, owner) -> None:
    profile = new_profile(company, owner, channels=2)
    viewer = client_as(member(company, Role.VIEWER))

    html = viewer.get(f"/sip-profiles/{profile.public_id}/").content.decode()
    posted = viewer.post(
        f"/sip-profiles/{profile.public_id}/", {"action": "buy", "count": "1", "key": "k"}, format="multipart"
    )

    assert 'id="bundle-minutes"' in html
    assert 'id="bundle-form"' not in html
    assert posted.status_code == 403
