"""End to end in Chromium (issue 3, item 9): a company owner creates a digest SIP profile and
copies its password, adds an IP profile, buys an Online Number, routes a business account to
the digest profile, assigns the number to that account and presents it as the caller ID."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import Dialog, Page, expect

from apps.business_accounts.models import BusinessAccount
from apps.companies.models import Role
from apps.numbers.models import NumberSubscription, OnlineNumber
from apps.sip_profiles.models import SipProfile
from tests.factories import PASSWORD, CompanyFactory, member

EMAIL = "owner@directory.example"
COMPANY = "Directory Calls Ltd"
DIGEST_PROFILE = "Main PBX"
IP_PROFILE = "Branch PBX"
IP_LINE = "192.0.2.10 5060 udp"
NUMBER = "+442079460123"
NUMBER_SHOWN = "+442079460123"  # E.164, as every page shows numbers
ACCOUNT = "sales.desk"
ACCOUNT_DISPLAY = "Sales desk"
TIMEOUT_MS = 10_000


def label(text: str) -> re.Pattern[str]:
    """A field's whole label, with or without Django's ":" suffix."""
    return re.compile(rf"^{re.escape(text)}:?$")


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")
    expect(page, "sign-in should end on the dashboard").to_have_url(f"{base}/")
    expect(page.locator("main h1"), "the dashboard shows the company's name").to_have_text(COMPANY)


def expect_message(page: Page, text: str) -> None:
    expect(page.get_by_role("status"), f"the page should say {text!r}").to_contain_text(text)


def accept_confirm(dialog: Dialog) -> None:
    assert dialog.type == "confirm", dialog.message
    dialog.accept()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_profiles_number_business_account_and_caller_id(live_server: Any, page: Page) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.on("dialog", accept_confirm)  # the buy button asks data-confirm first

    company = CompanyFactory(name=COMPANY, country="GB", currency="GBP")
    member(company, Role.OWNER, email=EMAIL)
    sign_in(page, base)

    # 1. A digest profile: the password is shown once, copied with the Copy button.
    page.goto(f"{base}/sip-profiles/new/")
    page.get_by_label(label("Name")).fill(DIGEST_PROFILE)
    page.get_by_label("SIP registration (digest)").check()
    page.get_by_role("button", name="Create profile").click()
    expect(page.locator("#quote-amount"), "the price is shown before it is paid").to_contain_text("GBP")
    page.locator("#confirm-button").click()
    expect(page.locator("main h1")).to_contain_text(DIGEST_PROFILE)
    box = page.locator("#new-password")
    expect(box, "the new password is shown once").to_contain_text("will not be shown again")
    password_input = page.locator("#sip-password")
    expect(password_input).to_have_value(re.compile(r"^\S{16,}$"))
    password = password_input.input_value()
    copy = box.locator("[data-copy-target=sip-password]")
    copy.click()
    expect(copy, "the button confirms the copy").to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == password

    digest = SipProfile.objects.get(company=company, name=DIGEST_PROFILE)
    username = page.locator("#sip-username").inner_text().strip()
    assert username == digest.sip_username
    ha1_material = f"{username}:{settings.SIP_DOMAIN}:{password}".encode()
    assert digest.ha1_md5 == hashlib.md5(ha1_material).hexdigest()  # noqa: S324 (SIP digest HA1)
    assert digest.ha1_sha256 == hashlib.sha256(ha1_material).hexdigest()  # RFC 8760

    detail_url = f"{base}/sip-profiles/{digest.public_id}/"
    page.goto(detail_url)
    expect(page.locator("#sip-username")).to_have_text(username)
    expect(page.locator("#new-password"), "the password is not shown again").to_have_count(0)
    expect(page.locator("#sip-password")).to_have_count(0)
    assert password not in page.content()

    # 2. An IP-authenticated profile.
    page.goto(f"{base}/sip-profiles/new/")
    page.get_by_label(label("Name")).fill(IP_PROFILE)
    page.get_by_label("IP address").check()
    page.get_by_label("Allowed addresses").fill(IP_LINE)
    page.get_by_role("button", name="Create profile").click()
    page.locator("#confirm-button").click()
    expect(page.locator("main h1")).to_contain_text(IP_PROFILE)
    expect(page.locator("main"), "the allowed address is listed").to_contain_text("192.0.2.10/32 UDP:5060")
    expect(page.locator("#new-password"), "an IP profile has no password").to_have_count(0)
    ip_profile = SipProfile.objects.get(company=company, name=IP_PROFILE)
    assert ip_profile.auth_method == SipProfile.AuthMethod.IP
    assert [(a.network, a.port, a.transport) for a in ip_profile.allowed_addresses.all()] == [
        ("192.0.2.10/32", 5060, "udp")
    ]

    # 3. Buy an Online Number found with the page's search.
    OnlineNumber.objects.create(
        number=NUMBER,
        country="GB",
        area="London",
        number_type=OnlineNumber.Type.GEOGRAPHIC,
        price_3m_usd=Decimal("4.00"),
        price_12m_usd=Decimal("14.00"),
        price_3m_eur=Decimal("3.70"),
        price_12m_eur=Decimal("13.00"),
        price_3m_gbp=Decimal("3.20"),
        price_12m_gbp=Decimal("11.50"),
    )
    page.goto(f"{base}/numbers/")
    search = page.get_by_role("search")
    search.get_by_label("Digits").fill("2079460123")
    search.get_by_role("button", name="Search").click()
    expect(page, "the search is kept in the address").to_have_url(re.compile(r"[?&]contains=2079460123"))
    result = page.locator("#available-numbers tbody tr").filter(has_text=NUMBER_SHOWN)
    expect(result, "the stock number is found").to_have_count(1)
    expect(page.locator("#available-numbers tbody tr"), "and only it").to_have_count(1)
    expect(search, "no search request is still running").not_to_have_class(re.compile(r"\bhtmx-request\b"))
    result.get_by_role("button", name=re.compile(r"^Buy for 12 months · 11\.50 GBP$")).click()
    expect(page.locator("#quote-amount"), "the price is confirmed first").to_contain_text("11.50 GBP")
    page.locator("#confirm-button").click()
    expect(page, "buying leads to the number's page").to_have_url(
        re.compile(rf"^{re.escape(base)}/numbers/[0-9a-f-]{{36}}/$")
    )
    expect(page.locator("#e164")).to_have_text(NUMBER)
    expect(page.locator("main"), "bought for 12 months").to_contain_text("12 months at 11.50 GBP")
    subscription = NumberSubscription.objects.get(company=company, number__number=NUMBER)
    assert (subscription.months, subscription.status, subscription.business_account) == (12, "active", None)

    # 4. A business account routed to the digest profile, then the number assigned to it.
    page.goto(f"{base}/business-accounts/")
    create = page.locator("#create")
    create.get_by_label(label("Name")).fill(ACCOUNT)
    create.get_by_label("Display name").fill(ACCOUNT_DISPLAY)
    create.get_by_role("button", name="Create account").click()
    expect_message(page, f"Business account “{ACCOUNT}” was created.")
    route = page.get_by_label(f"SIP profile of {ACCOUNT}")
    route.select_option(label=DIGEST_PROFILE)
    page.get_by_role("row").filter(has=route).get_by_role("button", name="Route").click()
    expect_message(page, f"“{ACCOUNT}” now rings SIP profile “{DIGEST_PROFILE}”.")
    expect(page.get_by_label(f"SIP profile of {ACCOUNT}")).to_have_value(str(digest.public_id))

    page.goto(f"{base}/numbers/")
    assign = page.get_by_label(f"Business account for {NUMBER}")
    assign.select_option(label=f"{ACCOUNT} ({ACCOUNT_DISPLAY})")
    page.get_by_role("row").filter(has=assign).get_by_role("button", name="Save").click()
    expect_message(page, f"Calls to {NUMBER} now reach {ACCOUNT}.")
    account = BusinessAccount.objects.get(company=company, name=ACCOUNT)
    expect(page.get_by_label(f"Business account for {NUMBER}")).to_have_value(str(account.public_id))

    # 5. The number as the digest profile's caller ID.
    page.goto(f"{detail_url}edit/")
    page.get_by_label(label("Caller ID")).select_option(NUMBER)
    page.get_by_role("button", name="Save").click()
    expect(page, "saving returns to the profile").to_have_url(detail_url)
    expect(page.locator("#caller-id")).to_have_text(NUMBER)
    expect(page.locator("main"), "the profile lists its business account").to_contain_text(ACCOUNT)
    page.screenshot(path="/tmp/profile.png", full_page=True)
    page.goto(f"{base}/numbers/")
    expect(page.get_by_label(f"Business account for {NUMBER}")).to_have_value(str(account.public_id))
    page.screenshot(path="/tmp/numbers.png", full_page=True)

    # The same state in the database.
    subscription.refresh_from_db()
    account.refresh_from_db()
    digest.refresh_from_db()
    assert subscription.business_account == account
    assert account.sip_profile == digest
    assert account.signin_enabled is False
    assert digest.caller_id_number == subscription
    assert digest.caller_id_landline is None
    assert not digest.withhold_caller_id
