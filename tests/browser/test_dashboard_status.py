"""In Chromium (issue 14, items 1 and 5): the owner's dashboard shows the balance, the spend,
its profiles' rows, alerts with their fix and the next steps, and the status page shows an
edge node that does not answer; both read at 1280 and at 375 pixels wide (screenshots in
test-results/screenshots/). A viewer's dashboard has no next steps and no fix links."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.billing.ledger.allocations import credit_allocate
from apps.billing.models import Charge, LedgerAccount
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.core.money import format_money
from apps.edge.models import EdgeNode
from tests.core.outages import closed_port
from tests.factories import CompanyFactory, grant, member
from tests.helpers.browser import look_at_both_widths, sign_in
from tests.sip_profiles.factories import digest_profile, ip_profile

OWNER = "owner@dashboard.example"
VIEWER = "viewer@dashboard.example"


def company_with_a_week_of_use() -> Any:
    company = CompanyFactory(name="Dashboard Calls Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email=OWNER)
    member(company, Role.VIEWER, email=VIEWER)
    grant(company, "20", "stripe:pi_browser_dashboard")
    main, _ = digest_profile(company, owner, name="Head office PBX with a rather long name")  # 2 channels
    credit_allocate(actor=Actor.system(), profile=main, amount="2.5", key="alloc:browser")  # low
    ip_profile(company, owner, name="Branch", address="192.0.2.77")  # its channels cannot be paid: grace
    EdgeNode.objects.create(
        name="edge-primary",
        role=EdgeNode.Role.PRIMARY,
        sip_host="127.0.0.1",
        rpc_url=f"http://127.0.0.1:{closed_port()}/RPC",
        database_url=f"postgres://k@127.0.0.1:{closed_port()}/edge",
    )
    return company


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_reads_the_dashboard_and_the_status_page_at_both_widths(live_server: Any, page: Page) -> None:
    company = company_with_a_week_of_use()
    balance = LedgerAccount.objects.get(company=company, kind="company_balance").balance
    paid = sum(c.amount for c in Charge.objects.filter(company=company, status="paid"))  # the first's channels
    base = live_server.url
    sign_in(page, base, OWNER)

    main = page.locator("main")
    expect(main.locator("h1")).to_have_text("Dashboard Calls Ltd")
    expect(page.locator("#company-balance .value")).to_have_text(format_money(balance, "GBP"))
    expect(page.locator("#spend-today .value")).to_have_text(format_money(paid, "GBP"))
    rows = page.locator("#profiles tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Branch")
    expect(rows.first.locator(".registration")).to_contain_text("By IP address")
    expect(rows.nth(1).locator(".channels")).to_contain_text("unknown / 2")
    expect(rows.nth(1).locator(".balance")).to_have_text("2.50 GBP")
    alerts = page.locator("#alerts")
    expect(alerts.locator("li[data-kind=charge-grace]")).to_contain_text("could not be paid")
    expect(alerts.locator("li[data-kind=profile-low]").get_by_role("link", name="Give it credit")).to_be_visible()
    steps = page.locator("#next-steps")
    expect(steps).to_contain_text("2 to go")
    expect(steps.locator("li.done")).to_have_count(2)  # credit bought, a profile created
    look_at_both_widths(page, "dashboard")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Status").click()
    expect(main.locator("h1")).to_have_text("Service status")
    node = page.locator("#status-nodes tr[data-node=edge-primary]")
    expect(node.locator(".state")).to_contain_text("Down")
    expect(page.locator("#status-edge")).to_contain_text("1 down")
    expect(page.locator("#status-rating .value")).to_have_text("none")
    look_at_both_widths(page, "status")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_viewers_dashboard_has_no_next_steps_and_no_fix_links(live_server: Any, page: Page) -> None:
    company_with_a_week_of_use()
    sign_in(page, live_server.url, VIEWER)

    expect(page.locator("#alerts li[data-kind=profile-low]")).to_be_visible()
    expect(page.locator("#alerts a")).to_have_count(0)
    expect(page.locator("#next-steps")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("Verify your company")
    look_at_both_widths(page, "dashboard-viewer")
