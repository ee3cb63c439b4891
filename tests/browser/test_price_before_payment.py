"""In Chromium (issue 13, items 1 and 3): every price is shown before it is paid, and a reload
repeats nothing. The owner creates a SIP profile (its channels and a bundle are priced on a
confirmation step, at 1280 and 375 px), sees the new password once, buys a bundle from the
profile page (the price in the card; once confirmed, the credit box shows the new balance with
no reload), reloads after resetting the password (still one password), and buys a number."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from playwright.sync_api import Page, expect

from apps.audit.models import AuditEvent
from apps.billing.ledger.selectors import company_balance
from apps.billing.models import Charge
from apps.companies.models import Role
from apps.numbers.models import NumberSubscription
from apps.sip_profiles.models import SipProfile
from tests.bundles.helpers import credit
from tests.factories import CompanyFactory, member
from tests.helpers.browser import WIDTHS, look_at_both_widths, save_screenshot, sign_in
from tests.numbers.factories import OnlineNumberFactory

EMAIL = "owner@prices.example"
# Frozen, so that the price shown and the price charged are computed at the same instant (a
# prorated price shrinks by a fraction of a cent a minute); ahead of the real clock, so the
# session cookie the frozen server sets has not expired for the browser.
NOW = datetime(2027, 3, 5, 9, 30, tzinfo=UTC)


def _price_fits_at_both_widths(page: Page, name: str, region: str) -> None:
    """The profile page around a price at 1280 and 375 px, saved as `name-<width>`: the price and
    its buttons fit the window. (The rest of that page at 375 px is issue 13, item 4's.)"""
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.locator(region).scroll_into_view_if_needed()
        save_screenshot(page, f"{name}-{width}")
        for part in (region, f"{region} #quote-amount", f"{region} #confirm-button"):
            box = page.locator(part).bounding_box()
            assert box is not None, part
            assert box["x"] >= 0, (part, box)
            assert box["x"] + box["width"] <= width + 1, (part, box, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def _money(text: str) -> Decimal:
    return Decimal(text.split()[0].replace(",", ""))


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_price_is_shown_before_it_is_paid_and_a_reload_repeats_nothing(live_server: Any, page: Page) -> None:
    base = live_server.url
    with time_machine.travel(NOW, tick=False):
        company = CompanyFactory(name="Priced Calls Ltd", country="GB", currency="GBP")
        member(company, Role.OWNER, email=EMAIL)
        credit(company, "200")
        OnlineNumberFactory(number="+442079460958")
        sign_in(page, base, EMAIL)

        # A new profile: the price of its 2 channels and 1 bundle, before anything is charged.
        page.goto(f"{base}/sip-profiles/new/")
        page.locator("#id_name").fill("Head office")
        page.locator("#id_channels").fill("2")
        page.locator("#id_us_minute_bundles").fill("1")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("#confirm-title")).to_have_text("Create “Head office”")
        shown = _money(page.locator("#quote-amount strong").inner_text())
        expect(page.locator("#quote-balance-now")).to_contain_text("200.00 GBP")
        expect(page.locator("#quote-balance-after")).to_have_text(f"{Decimal('200.00') - shown:,.2f} GBP")
        assert not SipProfile.objects.exists()
        assert not Charge.objects.exists()
        look_at_both_widths(page, "confirm-new-profile")
        page.set_viewport_size({"width": 1280, "height": 900})

        page.locator("#confirm-button").click()
        expect(page.locator("#new-password")).to_be_visible()
        profile = SipProfile.objects.get(name="Head office")
        charged = sum(c.amount for c in Charge.objects.filter(company=company))
        assert _cents(charged) == shown
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            save_screenshot(page, f"profile-new-password-{width}")
            box = page.locator("#new-password").bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= width + 1
        page.set_viewport_size({"width": 1280, "height": 900})
        page.reload()  # a GET: the profile is not created again, the password not shown again
        expect(page.locator("#new-password")).to_have_count(0)
        assert SipProfile.objects.filter(company=company).count() == 1

        # Reset password, then reload: one new password, shown once.
        page.once("dialog", lambda dialog: dialog.accept())  # "Set a new password? …"
        page.get_by_role("button", name="Reset password").click()
        expect(page.locator("#new-password")).to_be_visible()
        profile.refresh_from_db()
        reset_at = profile.password_set_at
        page.reload()
        expect(page.locator("#new-password")).to_have_count(0)
        profile.refresh_from_db()
        assert profile.password_set_at == reset_at

        # One more bundle from the profile page: priced in its card, and the credit box follows.
        balance_before = company_balance(company)
        expect(page.locator("#profile-balance")).to_contain_text(f"{balance_before:,.2f}")
        page.locator("#bundle-count").fill("1")
        page.locator("#bundle-form button[value=buy]").click()
        expect(page.locator("#profile-bundles #confirm-title")).to_have_text("Buy 1 US minute bundle")
        bundle_price = _money(page.locator("#profile-bundles #quote-amount strong").inner_text())
        assert Charge.objects.filter(company=company, kind=Charge.Kind.US_BUNDLE).count() == 1
        _price_fits_at_both_widths(page, "confirm-bundle-in-card", "#profile-bundles #confirm-price")
        page.locator("#profile-bundles #confirm-button").click()
        expect(page.locator("#page-messages")).to_contain_text("1 US minute bundle bought.")
        bought = Charge.objects.filter(company=company, kind=Charge.Kind.US_BUNDLE).order_by("-pk")[0]
        assert _cents(bought.amount) == bundle_price
        balance_after = company_balance(company)
        assert balance_after == balance_before - bought.amount
        # No reload: htmx swapped the credit box and the calls card from the page it was redirected to.
        expect(page.locator("#profile-balance")).to_contain_text(f"{balance_after:,.2f}")
        expect(page.locator("#profile-calls")).to_contain_text("2 ·")
        expect(page.locator("#bundles-count")).to_contain_text("2 of at most 2")

        # A number: the price of its 12 months, then bought once.
        page.goto(f"{base}/numbers/?country=GB")
        page.get_by_role("button", name="Buy for 12 months").first.click()
        expect(page.locator("#confirm-title")).to_contain_text("Buy +442079460958 for 12 months")
        number_price = _money(page.locator("#quote-amount strong").inner_text())
        assert not NumberSubscription.objects.exists()
        look_at_both_widths(page, "confirm-number")
        page.set_viewport_size({"width": 1280, "height": 900})
        # A double click sends the confirmation twice: one purchase, whichever answer the browser shows.
        page.locator("#confirm-button").dblclick()
        expect(page.locator("#renewal-quote")).to_be_visible()
        assert NumberSubscription.objects.filter(company=company).count() == 1
        assert Charge.objects.get(kind=Charge.Kind.NUMBER).amount == number_price

        # Renewing it: turning auto-renew back on names the next term's price, the balance it is
        # paid from and the balance after, and changes nothing until confirmed.
        subscription = NumberSubscription.objects.get(company=company)
        if subscription.auto_renew:
            page.get_by_role("button", name="Turn auto-renew off").click()
            expect(page.locator("#page-messages")).to_contain_text("will not be renewed")
        subscription.refresh_from_db()
        assert not subscription.auto_renew
        page.get_by_role("button", name="Turn auto-renew on").click()
        expect(page.locator("#confirm-title")).to_have_text("Renew +442079460958 for 12 months")
        renewal_price = _money(page.locator("#quote-amount strong").inner_text())
        assert renewal_price == _cents(subscription.price)
        balance = company_balance(company)
        expect(page.locator("#quote-balance-now")).to_contain_text(f"the company balance, {balance:,.2f} GBP now")
        expect(page.locator("#quote-balance-after")).to_have_text(f"{_cents(balance) - renewal_price:,.2f} GBP")
        subscription.refresh_from_db()
        assert not subscription.auto_renew
        look_at_both_widths(page, "confirm-number-renewal")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#confirm-button").click()
        expect(page.locator("#page-messages")).to_contain_text("renews on")
        subscription.refresh_from_db()
        assert subscription.auto_renew
        # A reload of the page it was redirected to changes nothing more.
        changes = AuditEvent.objects.filter(company=company, action="number.auto_renew_changed").count()
        page.reload()
        assert AuditEvent.objects.filter(company=company, action="number.auto_renew_changed").count() == changes
