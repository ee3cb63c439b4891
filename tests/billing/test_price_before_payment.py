"""Issue 13, items 1 and 3: every priced action shows its price (from which balance, and the
balance after) before it is confirmed, charges exactly what it showed, charges nothing until
it is confirmed, refuses a price that changed in between, and acts once however often its
form is sent; the API answers the same quote with `?quote=1`, buying nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from apps.billing.ledger.selectors import company_balance
from apps.billing.models import Charge, Price
from apps.billing.pages import ALREADY_DONE
from apps.bundles.services import bundles_buy
from apps.core.actor import Actor
from apps.numbers.models import NumberSubscription
from apps.sip_profiles.models import SipProfile
from tests.bundles.helpers import credit, new_profile
from tests.conftest import client_as
from tests.helpers.confirm import balance_after, confirmation
from tests.numbers.factories import OnlineNumberFactory

pytestmark = pytest.mark.django_db
# 5 Nov 2026, 09:30: a profile made now renews on the 5th; 29 days 14.5 hours of 30 days are left.
NOW = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)
LATER = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
NEW_PROFILE = {
    "name": "Head office",
    "auth_method": "registration",
    "channels": "3",
    "us_minute_bundles": "1",
    "tls_required": "on",
    "srtp_required": "on",
}


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


def _charged(company) -> Decimal:
    return sum((c.amount for c in Charge.objects.filter(company=company)), Decimal("0"))


@time_machine.travel(NOW, tick=False)
def test_creating_a_profile_shows_its_price_charges_nothing_until_confirmed_then_exactly_that(company, owner) -> None:
    credit(company, "200")
    client = client_as(owner)

    asked = client.post("/sip-profiles/new/", NEW_PROFILE, format="multipart")

    assert asked.status_code == 200
    page = asked.content.decode()
    amount, fields = confirmation(page)
    assert not SipProfile.objects.exists()
    assert not Charge.objects.exists()
    assert "the company balance, 200.00 GBP now" in page
    assert balance_after(page) == Decimal("200.00") - amount
    # 3 channels × 7.95 and 1 bundle × 31.00, each prorated from 09:30 to 5 Dec (29.6 of 30 days).
    assert amount == Decimal("54.13")
    confirmed = client.post("/sip-profiles/new/", fields, format="multipart")

    profile = SipProfile.objects.get(name="Head office")
    assert confirmed.status_code == 302
    assert confirmed["Location"] == f"/sip-profiles/{profile.public_id}/"
    assert _cents(_charged(company)) == amount
    assert Charge.objects.filter(company=company).count() == 2
    assert company_balance(company) == Decimal("200") - _charged(company)


@time_machine.travel(NOW, tick=False)
def test_the_new_password_is_shown_once_on_the_page_redirected_to_and_a_resent_form_creates_nothing(
    company, owner
) -> None:
    credit(company, "200")
    client = client_as(owner)
    _, fields = confirmation(client.post("/sip-profiles/new/", NEW_PROFILE, format="multipart").content.decode())

    created = client.post("/sip-profiles/new/", fields, format="multipart")
    shown = client.get(created["Location"])
    reloaded = client.get(created["Location"])
    resent = client.post("/sip-profiles/new/", fields, format="multipart")

    assert shown["Cache-Control"] == "no-store"
    assert "will not be shown again" in shown.content.decode()
    assert 'id="sip-password"' in shown.content.decode()
    assert "will not be shown again" not in reloaded.content.decode()
    assert resent.status_code == 302
    assert resent["Location"] == created["Location"]
    assert SipProfile.objects.filter(company=company).count() == 1
    assert Charge.objects.filter(company=company).count() == 2
    after_resend = client.get(resent["Location"]).content.decode()
    assert ALREADY_DONE in after_resend
    assert "will not be shown again" not in after_resend


def test_reset_password_sent_twice_makes_one_password_shown_once(company, owner) -> None:
    credit(company, "200")
    profile = new_profile(company, owner)
    client = client_as(owner)
    page = client.get(f"/sip-profiles/{profile.public_id}/").content.decode()
    once = page.split('name="once" value="', 1)[1].split('"', 1)[0]
    url = f"/sip-profiles/{profile.public_id}/reset-password/"

    first = client.post(url, {"once": once}, format="multipart")
    profile.refresh_from_db()
    hashed = (profile.ha1_md5, profile.password_set_at)
    shown = client.get(first["Location"]).content.decode()
    again = client.post(url, {"once": once}, format="multipart")
    after = client.get(again["Location"]).content.decode()

    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == f"/sip-profiles/{profile.public_id}/"
    password = shown.split('id="sip-password" readonly value="', 1)[1].split('"', 1)[0]
    assert len(password) == 24
    profile.refresh_from_db()
    assert (profile.ha1_md5, profile.password_set_at) == hashed  # the second sending made no password
    assert password not in after
    assert ALREADY_DONE in after


def test_raising_channels_shows_the_prorated_price_to_the_renewal_day_and_charges_it(company, owner) -> None:
    credit(company, "200")
    with time_machine.travel(NOW, tick=False):
        profile = new_profile(company, owner, channels=2)
    client = client_as(owner)
    edit = f"/sip-profiles/{profile.public_id}/edit/"
    form = {"name": profile.name, "channels": "4", "tls_required": "on", "srtp_required": "on", "status": "active"}

    with time_machine.travel(LATER, tick=False):
        asked = client.post(edit, form, format="multipart")
        amount, fields = confirmation(asked.content.decode())
        profile.refresh_from_db()
        unchanged = profile.channels
        charges_before = Charge.objects.filter(kind=Charge.Kind.CHANNELS).count()
        confirmed = client.post(edit, fields, format="multipart")
        resent = client.post(edit, fields, format="multipart")

    # 2 channels × 7.95 from 20 Nov 18:00 to 5 Dec: 14.25 of 30 days = 7.5525.
    assert amount == Decimal("7.55")
    assert unchanged == 2
    assert confirmed.status_code == resent.status_code == 302
    raised = Charge.objects.filter(kind=Charge.Kind.CHANNELS).order_by("-created_at", "-pk")
    assert raised.count() == charges_before + 1
    assert raised[0].amount == Decimal("7.5525")
    assert _cents(raised[0].amount) == amount
    profile.refresh_from_db()
    assert profile.channels == 4


def test_saving_a_profile_without_more_channels_needs_no_confirmation(company, owner) -> None:
    credit(company, "200")
    profile = new_profile(company, owner, channels=3)
    form = {"name": "Renamed", "channels": "2", "tls_required": "on", "srtp_required": "on", "status": "active"}

    saved = client_as(owner).post(f"/sip-profiles/{profile.public_id}/edit/", form, format="multipart")

    assert saved.status_code == 302
    profile.refresh_from_db()
    assert (profile.name, profile.channels) == ("Renamed", 2)


def test_a_price_changed_between_the_quote_and_the_confirmation_is_refused_and_nothing_is_charged(
    company, owner
) -> None:
    credit(company, "200")
    with time_machine.travel(NOW, tick=False):
        profile = new_profile(company, owner, channels=1)
    page = f"/sip-profiles/{profile.public_id}/"
    client = client_as(owner)
    shown = client.post(page, {"action": "buy", "count": "1", "key": "k1"}, format="multipart")
    _, fields = confirmation(shown.content.decode())
    Price.objects.filter(kind=Price.Kind.US_BUNDLE_MONTHLY, currency="GBP").update(amount=Decimal("35.00"))

    refused = client.post(page, fields, format="multipart")

    assert refused.status_code == 409
    html = refused.content.decode()
    assert "The price changed since it was shown" in html
    assert not Charge.objects.filter(kind=Charge.Kind.US_BUNDLE).exists()
    new_amount, new_fields = confirmation(html)
    bought = client.post(page, new_fields, format="multipart")
    assert bought.status_code == 302
    assert _cents(Charge.objects.get(kind=Charge.Kind.US_BUNDLE).amount) == new_amount


def test_buying_bundles_with_htmx_confirms_in_the_card_then_the_page_refreshes_every_figure(company, owner) -> None:
    credit(company, "200")
    with time_machine.travel(NOW, tick=False):
        profile = new_profile(company, owner, channels=3)
    page = f"/sip-profiles/{profile.public_id}/"
    client = client_as(owner)
    before = company_balance(company)

    with time_machine.travel(LATER, tick=False):
        card = client.post(
            page, {"action": "buy", "count": "2", "key": "kb"}, format="multipart", HTTP_HX_REQUEST="true"
        )
        amount, fields = confirmation(card.content.decode())
        nothing_yet = Charge.objects.filter(kind=Charge.Kind.US_BUNDLE).count()
        done = client.post(page, fields, format="multipart", HTTP_HX_REQUEST="true")
        again = client.post(page, fields, format="multipart", HTTP_HX_REQUEST="true")

    assert card.status_code == 200
    assert "<html" not in card.content.decode()
    assert 'hx-select-oob="#profile-credit,#profile-calls,#page-messages"' in card.content.decode()
    assert nothing_yet == 0
    # Done: a redirect to the page, which htmx follows and takes the card and the figures from.
    assert done.status_code == again.status_code == 302
    charge = Charge.objects.get(kind=Charge.Kind.US_BUNDLE)
    assert _cents(charge.amount) == amount
    refreshed = client.get(done["Location"]).content.decode()
    after = company_balance(company)
    assert after == before - charge.amount
    credit_box = refreshed.split('id="profile-credit"', 1)[1].split("</dl>", 1)[0]
    assert f"{_cents(after):,.2f}" in credit_box
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 2


def test_cancelling_bundles_is_confirmed_at_no_charge(company, owner) -> None:
    credit(company, "200")
    profile = new_profile(company, owner, channels=3)
    bundles_buy(actor=Actor(user=owner), profile=profile, count=2)
    page = f"/sip-profiles/{profile.public_id}/"
    client = client_as(owner)

    asked = client.post(page, {"action": "cancel", "count": "1", "key": "kc", "held": "2"}, format="multipart")
    amount, fields = confirmation(asked.content.decode())
    profile.refresh_from_db()
    held_while_asking = profile.us_minute_bundles
    cancelled = client.post(page, fields, format="multipart")
    resent = client.post(page, fields, format="multipart")

    assert amount == Decimal("0.00")
    assert "no refund" in asked.content.decode()
    assert held_while_asking == 2
    assert cancelled.status_code == resent.status_code == 302
    profile.refresh_from_db()
    assert profile.us_minute_bundles == 1


@time_machine.travel(NOW, tick=False)
def test_buying_a_number_shows_its_price_and_charges_it_once(company, owner) -> None:
    credit(company, "50")
    OnlineNumberFactory(number="+442079460958")
    client = client_as(owner)
    form = {"number": "+442079460958", "months": "12", "auto_renew": "on", "country": "GB"}

    asked = client.post("/numbers/", form, format="multipart")
    amount, fields = confirmation(asked.content.decode())
    nothing_yet = NumberSubscription.objects.exists()
    bought = client.post("/numbers/", fields, format="multipart")
    resent = client.post("/numbers/", fields, format="multipart")

    assert amount == Decimal("14.00")
    assert not nothing_yet
    assert bought.status_code == resent.status_code == 302
    assert resent["Location"] == bought["Location"]
    charge = Charge.objects.get(kind=Charge.Kind.NUMBER)
    assert charge.amount == Decimal("14.0000")
    detail = client.get(bought["Location"]).content.decode()
    assert 'id="renewal-quote"' in detail
    assert "14.00 GBP" in detail.split('id="renewal-quote"', 1)[1].split("</p>", 1)[0]


# --- The API: ?quote=1 ------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_api_quotes_a_new_profile_without_creating_it_and_then_charges_the_quote(company, owner) -> None:
    credit(company, "200")
    client = client_as(owner)
    body = {"name": "API PBX", "auth_method": "registration", "channels": 3, "us_minute_bundles": 1}

    quoted = client.post("/api/v1/sip-profiles/?quote=1", body, format="json")
    nothing = (SipProfile.objects.exists(), Charge.objects.exists())
    created = client.post("/api/v1/sip-profiles/", body, format="json")

    assert quoted.status_code == 200
    quote = quoted.json()
    assert set(quote) >= {"amount", "currency", "balance_now", "balance_after", "period_end"}
    assert quote["currency"] == "GBP"
    assert quote["period_end"].startswith("2026-12-05")
    assert Decimal(quote["balance_now"]) == Decimal("200.00")
    assert Decimal(quote["balance_after"]) == Decimal("200.00") - Decimal(quote["amount"])
    assert nothing == (False, False)
    assert created.status_code == 201
    assert _cents(_charged(company)) == Decimal(quote["amount"])


def test_the_api_quotes_channels_bundles_and_numbers_as_they_are_then_charged(company, owner) -> None:
    credit(company, "300")
    with time_machine.travel(NOW, tick=False):
        profile = new_profile(company, owner, channels=2)
    OnlineNumberFactory(number="+442079460959")
    client = client_as(owner)
    url = f"/api/v1/sip-profiles/{profile.public_id}/"

    with time_machine.travel(LATER, tick=False):
        channels = client.patch(f"{url}?quote=1", {"channels": 5}, format="json").json()
        still = SipProfile.objects.get(pk=profile.pk).channels
        client.patch(url, {"channels": 5}, format="json")
        bundles = client.post(f"{url}bundles/?quote=1", {"action": "buy", "count": 2}, format="json").json()
        no_bundles = not Charge.objects.filter(kind=Charge.Kind.US_BUNDLE).exists()
        client.post(f"{url}bundles/", {"action": "buy", "count": 2}, format="json")
        number = client.post("/api/v1/numbers/?quote=1", {"number": "+442079460959", "months": 3}, format="json").json()
        no_number = not NumberSubscription.objects.exists()
        bought = client.post("/api/v1/numbers/", {"number": "+442079460959", "months": 3}, format="json")
        renewal = client.patch(f"/api/v1/numbers/{bought.json()['id']}/?quote=1", {}, format="json").json()
        cancel = client.post(f"{url}bundles/?quote=1", {"action": "cancel", "count": 1}, format="json").json()

    assert still == 2
    assert no_bundles
    assert no_number
    channel_charge = Charge.objects.filter(kind=Charge.Kind.CHANNELS).order_by("-pk")[0]
    assert Decimal(channels["amount"]) == _cents(channel_charge.amount) == Decimal("11.33")  # 3 × 7.95 × 14.25/30
    assert Decimal(bundles["amount"]) == _cents(Charge.objects.get(kind=Charge.Kind.US_BUNDLE).amount)
    assert Decimal(number["amount"]) == Charge.objects.get(kind=Charge.Kind.NUMBER).amount == Decimal("4.00")
    assert (Decimal(renewal["amount"]), renewal["period_end"][:10]) == (Decimal("4.00"), "2027-05-20")
    assert Decimal(cancel["amount"]) == Decimal("0.00")
    assert SipProfile.objects.get(pk=profile.pk).us_minute_bundles == 2


def test_an_api_quote_refuses_what_the_action_would_refuse_with_the_field(company, owner) -> None:
    profile = new_profile(company, owner, channels=1)

    refused = client_as(owner).post(
        f"/api/v1/sip-profiles/{profile.public_id}/bundles/?quote=1", {"action": "buy", "count": 2}, format="json"
    )

    assert refused.status_code == 400
    assert refused.json()["code"] == "bundles_exceed_channels"
    assert "count" in refused.json()["errors"]
