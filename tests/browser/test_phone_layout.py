"""In Chromium (issue 13, items 2, 4 and 6): every portal page a customer can open fits a
phone (375 px) and a desktop (1280 px) with nothing sticking out, each saved as a screenshot
(test-results/screenshots/<page>-<width>.png); on a phone the sections fold into a menu that
opens; a viewer's menu holds only pages it may open; a credit form sent with an error comes
back with what was typed."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from playwright.sync_api import Page, expect

from apps.audit.models import AuditEvent
from apps.billing.models import CreditPurchase
from apps.business_accounts.services import business_account_create
from apps.companies.models import Company, Role
from apps.core.actor import Actor
from apps.edge.models import EdgeNode
from apps.numbers.models import NumberSubscription
from apps.sip_profiles.models import SipProfile
from tests.billing.factories import wire_purchase
from tests.factories import PASSWORD, member
from tests.helpers.browser import assert_fits, look_at_both_widths, sign_in
from tests.sip_profiles.factories import held_number, ip_profile

OWNER = "owner@demo.example"
OWNER_PASSWORD = "demo-owner-password-2026"
# Pages that are not the portal's own layout or not a customer's: the API's (its docs are
# Swagger UI's page), the staff admin, health checks, Stripe's webhook; allauth's pages are
# listed by hand below.
# Not pages a customer reads: the API, staff, sign-in, monitoring, webhooks, the browser icon.
NOT_PORTAL_PAGES = ("api/", "staff/", "accounts/", "health", "stripe/", "favicon.ico")


def pages_without_arguments() -> list[tuple[str, str]]:
    """Every page of the URLconf that takes no argument, as (name, path): a page added later is
    looked at too."""
    found = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name and not p.pattern.converters:
                route = prefix + str(p.pattern)
                if not route.startswith(NOT_PORTAL_PAGES) and "<" not in route and "(" not in route:
                    found.append((p.name, "/" + route))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def the_demo_company() -> tuple[Company, Any]:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    company = Company.objects.get(name="Demo Telecom Ltd")
    owner = company.memberships.get(role=Role.OWNER).user
    # What the demo lacks for every kind of page to have a row: an IP profile, a business
    # account, a bank wire waiting, and the two edge nodes of "Connect your PBX".
    ip_profile(company, owner, address="81.2.69.160", name="Branch office PBX with a long name")
    business_account_create(actor=Actor(user=owner), company=company, name="sales.desk", display_name="Sales desk")
    wire_purchase(company, owner)
    held_number(company, "+442079460999")
    for name, role, host, public in (
        ("edge1", "primary", "203.0.113.10", "sip1.voice.example.com"),
        ("edge2", "secondary", "198.51.100.10", "sip2.voice.example.com"),
    ):
        EdgeNode.objects.create(
            name=name, role=role, sip_host=host, sip_port=5060, tls_port=5061, rpc_url="http://127.0.0.1:9/RPC",
            database_url=f"postgres://k@127.0.0.1:9/{name}", public_host=public,
        )  # fmt: skip
    return company, owner


def pages_with_an_id(company: Company) -> list[tuple[str, str]]:
    profile = SipProfile.objects.for_company(company).get(name="Demo PBX")
    number = NumberSubscription.objects.filter(company=company).first()
    event = AuditEvent.objects.for_company(company).order_by("-id").first()
    purchase = CreditPurchase.objects.filter(company=company).first()
    account = company.business_accounts.first()
    assert number is not None
    assert event is not None
    assert purchase is not None
    assert account is not None
    return [
        ("profile", f"/sip-profiles/{profile.public_id}/"),
        ("profile-edit", f"/sip-profiles/{profile.public_id}/edit/"),
        ("connect-pbx", f"/sip-profiles/{profile.public_id}/connect/"),
        ("business-account", f"/business-accounts/{account.public_id}/"),
        ("number", f"/numbers/{number.public_id}/"),
        ("purchase", f"/credit/purchases/{purchase.public_id}/"),
        ("audit-event", f"/audit/{event.public_id}/"),
        ("account-email", "/accounts/email/"),
        ("account-security", "/accounts/2fa/"),
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_customer_page_fits_a_phone_and_a_desktop(live_server: Any, page: Page, settings: Any) -> None:
    settings.SIP_DOMAIN = "voice.example.com"
    company, _ = the_demo_company()
    base = live_server.url
    sign_in(page, base, OWNER, OWNER_PASSWORD)
    # Some 30 full-page screenshots of long pages: on a loaded machine one took over 10 s.
    page.set_default_timeout(30_000)

    names = {"dashboard": "dashboard", "credit": "credit", "sip-profile-list": "profiles"}
    looked_at = []
    for name, path in pages_without_arguments():
        if page.request.get(base + path).status == 405:  # a form's POST address, not a page
            continue
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        shot = names.get(name, name)
        look_at_both_widths(page, shot)
        looked_at.append(shot)
    for shot, path in pages_with_an_id(company):
        response = page.goto(base + path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        look_at_both_widths(page, shot)
        looked_at.append(shot)

    assert {"dashboard", "profiles", "credit", "profile", "connect-pbx", "rates", "api-key-list"} <= set(looked_at)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_the_sections_fold_into_a_menu_that_opens(live_server: Any, page: Page) -> None:
    the_demo_company()
    base = live_server.url
    sign_in(page, base, OWNER, OWNER_PASSWORD)
    page.set_viewport_size({"width": 375, "height": 812})
    sections = page.get_by_role("navigation", name="Sections")
    menu = page.get_by_role("button", name="Menu")

    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(sections).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(sections.get_by_role("link", name="Credit", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Account").get_by_role("button", name="Sign out")).to_be_visible()
    look_at_both_widths(page, "menu-open")
    page.set_viewport_size({"width": 375, "height": 812})
    sections.get_by_role("link", name="Credit", exact=True).click()
    expect(page.locator("main h1")).to_have_text("Credit")
    expect(sections, "a new page starts with the menu folded").to_be_hidden()

    page.set_viewport_size({"width": 1280, "height": 900})
    expect(menu, "a desktop has no menu button").to_be_hidden()
    expect(sections).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_viewer_menu_links_only_to_pages_the_viewer_may_open(live_server: Any, page: Page) -> None:
    company, _ = the_demo_company()
    viewer = member(company, Role.VIEWER, email="viewer@demo.example")
    base = live_server.url
    sign_in(page, base, viewer.email, PASSWORD)
    page.set_viewport_size({"width": 375, "height": 812})
    page.get_by_role("button", name="Menu").click()
    links = page.get_by_role("navigation", name="Sections").get_by_role("link")

    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]

    assert "/api-keys/" not in hrefs
    assert "/audit/" not in hrefs
    assert len(hrefs) >= 10
    for href in hrefs:
        assert href
        assert page.request.get(base + href).status == 200, href
    expect(page.locator("main")).not_to_contain_text("Verify your company")
    look_at_both_widths(page, "viewer-dashboard")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_take_back_refused_comes_back_as_take_back_with_its_amount_on_a_phone(live_server: Any, page: Page) -> None:
    company, _ = the_demo_company()
    profile = SipProfile.objects.for_company(company).get(name="Demo PBX")
    base = live_server.url
    sign_in(page, base, OWNER, OWNER_PASSWORD)
    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    credit = page.locator("#profile-credit-form")

    credit.get_by_label("Allocate or take back").select_option(label="Take back")
    credit.get_by_label("Amount (GBP)").fill("5000")
    credit.get_by_role("button", name="Move credit").click()

    credit = page.locator("#profile-credit-form")
    expect(credit.get_by_label("Allocate or take back")).to_have_value("take_back")
    expect(credit.get_by_label("Amount (GBP)")).to_have_value("5000")
    expect(credit.locator("#id_credit_amount_error")).to_be_visible()
    look_at_both_widths(page, "profile-credit-error")


def _stacked_inside(page: Page, form: str, width: int) -> None:
    """Each field of `form` sits inside the window and below the one before it (stacked, not
    side by side past the edge)."""
    boxes = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector + ' input:not([type=hidden]):not([type=checkbox]), '
                                                     + selector + ' select, ' + selector + ' button')]
             .map(el => { const b = el.getBoundingClientRect(); return {id: el.id || el.textContent.trim(),
                          left: b.left, right: b.right, top: b.top, bottom: b.bottom}; })""",
        form,
    )
    assert len(boxes) >= 3, boxes
    for box in boxes:
        assert box["left"] >= 0, box
        assert box["right"] <= width + 1, (box, width)
    for above, below in pairwise(boxes):
        assert below["top"] >= above["bottom"] - 1, (above, below)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_auto_recharge_forms_stack_their_fields_on_a_phone_also_with_errors(live_server: Any, page: Page) -> None:
    company, _ = the_demo_company()
    profile = SipProfile.objects.for_company(company).get(name="Demo PBX")
    base = live_server.url
    sign_in(page, base, OWNER, OWNER_PASSWORD)
    page.set_viewport_size({"width": 375, "height": 812})

    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    _stacked_inside(page, "#profile-auto-recharge-form", 375)
    form = page.locator("#profile-auto-recharge-form")
    form.get_by_label("Top up from the company balance automatically").check()
    form.get_by_label("Allocate (GBP)").fill("100000000000000")
    form.get_by_role("button", name="Save auto-recharge").click()
    form = page.locator("#profile-auto-recharge-form")
    expect(form.locator(".error").first).to_be_visible()
    expect(form.get_by_label("Allocate (GBP)")).to_have_value("100000000000000")
    _stacked_inside(page, "#profile-auto-recharge-form", 375)
    assert_fits(page, 375)

    page.goto(f"{base}/credit/")
    _stacked_inside(page, "#auto-recharge-form", 375)
    assert_fits(page, 375)
