"""The Content-Security-Policy holds in Chromium (issue 12, item 5): the pages that use htmx,
the company switcher, the card form with (localstripe's) Stripe.js and the API docs work with
no inline script and report no violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from apps.companies.models import Role
from tests.billing.stripe_fixtures import localstripe, localstripe_server, stripe_webhooks
from tests.browser.test_buy_credit import EMAIL, TIMEOUT_MS, sign_in
from tests.factories import CompanyFactory, MembershipFactory, member
from tests.sip_profiles.factories import digest_profile

__all__ = ["localstripe", "localstripe_server", "stripe_webhooks"]


def watch_violations(page: Page) -> list[str]:
    """Every CSP violation the page reports (Chromium logs each one to the console), and any
    script error."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"script error: {error}"))
    return seen


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_htmx_the_switcher_stripe_js_and_the_docs_run_under_the_policy(
    live_server: Any, page: Page, stripe_webhooks: Any
) -> None:
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    company = CompanyFactory(name="Policy Calls Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email=EMAIL)
    other = CompanyFactory(name="Second Line Ltd", country="GB", currency="GBP")
    MembershipFactory(company=other, user=owner, role=Role.OWNER)
    profile, _ = digest_profile(company, owner)
    violations = watch_violations(page)
    sign_in(page, base)

    # A page with htmx (the profile's live status card loads itself).
    response = page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("main h1")).to_contain_text(profile.name)

    # The company switcher submits on change through app.js, not an inline handler.
    page.locator("#company-switch").select_option(label="Second Line Ltd")
    expect(page.locator("#company-switch option:checked")).to_have_text("Second Line Ltd")
    page.locator("#company-switch").select_option(label="Policy Calls Ltd")
    expect(page.locator("#company-switch option:checked")).to_have_text("Policy Calls Ltd")

    # The card form: Stripe.js from Stripe's (here localstripe's) origin, allowed on this page.
    page.get_by_role("link", name="Credit", exact=True).click()
    buy = page.locator("#buy-credit")
    buy.get_by_label("Amount (GBP)", exact=True).fill("25")
    buy.get_by_role("radio", name="Card", exact=True).check()
    buy.get_by_role("button", name="Continue").click()
    expect(page.locator("main h1")).to_have_text("Pay 25.00 GBP by Card")
    expect(page.locator("#card-element").get_by_placeholder("number")).to_be_visible()

    # The API docs: Swagger UI's set-up script is a file, so the page renders.
    page.goto(f"{base}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Skype Manager API")

    assert violations == []
