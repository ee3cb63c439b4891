"""In Chromium (issue 11, item 2): the owner opens "Connect your PBX" from the profile page
and copies the DNS SRV records of the SIP domain, both edge nodes with their priorities and
ports; the page reads at 375, 1280 and 1920 pixels wide with every value whole, each with a
copy button (screenshots connect-pbx-1280.png and connect-pbx-375.png)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from tests.edge.factories import two_edge_nodes
from tests.factories import PASSWORD, CompanyFactory, member
from tests.helpers.browser import assert_fits, look_at_both_widths
from tests.sip_profiles.factories import digest_profile

EMAIL = "owner@connect.example"
TIMEOUT_MS = 10_000
ZONE = [
    "_sip._udp.sip.example.com.  3600 IN SRV 10 10 5060 sip1.example.com.",
    "_sip._udp.sip.example.com.  3600 IN SRV 20 10 5060 sip2.example.com.",
    "_sip._tcp.sip.example.com.  3600 IN SRV 10 10 5060 sip1.example.com.",
    "_sip._tcp.sip.example.com.  3600 IN SRV 20 10 5060 sip2.example.com.",
    "_sips._tcp.sip.example.com. 3600 IN SRV 10 10 5061 sip1.example.com.",
    "_sips._tcp.sip.example.com. 3600 IN SRV 20 10 5061 sip2.example.com.",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_copies_the_srv_records_of_both_nodes_from_connect_your_pbx(
    live_server: Any, page: Page, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    base = live_server.url
    page.set_default_timeout(TIMEOUT_MS)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    two_edge_nodes(secondary_ports=(5060, 5061))
    company = CompanyFactory(name="Connect Calls Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email=EMAIL)
    profile, _ = digest_profile(company, owner, name="Head office PBX", tls_required=True, srtp_required=True)

    page.goto(f"{base}/accounts/login/")
    page.locator("#id_login").fill(EMAIL)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")
    expect(page).to_have_url(f"{base}/")
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    page.get_by_role("link", name="Connect your PBX").click()
    expect(page.locator("main h1")).to_have_text("Connect your PBX to “Head office PBX”")

    servers = page.locator("#connect-servers")
    expect(servers).to_contain_text("sip.example.com")
    expect(servers.locator("#copy-server-1")).to_have_text("sip1.example.com")
    expect(servers).to_contain_text("(primary; UDP/TCP 5060, TLS 5061)")
    expect(servers.locator("#copy-server-2")).to_have_text("sip2.example.com")
    expect(servers).to_contain_text("(secondary; UDP/TCP 5060, TLS 5061)")
    expect(servers.locator("#copy-proxy")).to_have_text("sip1.example.com:5061")
    expect(servers.locator("#copy-backup-1")).to_have_text("sip2.example.com:5061")
    # Each value has its own Copy button (issue 13, item 4).
    servers.get_by_role("button", name="Copy sip1.example.com:5061").click()
    assert page.evaluate("navigator.clipboard.readText()") == "sip1.example.com:5061"
    expect(page.locator("main")).to_contain_text(str(profile.sip_username))
    expect(page.locator("main")).to_contain_text("TLS required")
    expect(page.locator("main")).to_contain_text("SRTP (SDES")

    srv = page.locator("#dns-srv")
    srv.get_by_role("button", name="Copy").click()
    expect(srv.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert [line for line in copied.splitlines() if not line.startswith(";")] == ZONE

    # Nothing pushes the page wider than the window, and every value is shown whole (no box
    # cuts or scrolls it) at a phone's width, a desktop's and a wide screen's (issue 13, item 4).
    look_at_both_widths(page, "connect-pbx")
    for width, height in ((375, 812), (1280, 900), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        assert_fits(page, width)
        clipped = page.evaluate(
            """() => [...document.querySelectorAll('main code, main .mono, main pre')]
                .filter((el) => el.scrollWidth > el.clientWidth + 1 || el.getBoundingClientRect().right >
                                document.documentElement.clientWidth)
                .map((el) => el.id || el.textContent.slice(0, 40))"""
        )
        assert clipped == [], f"cut off at {width} px: {clipped}"
        expect(page.locator("#srv-zone")).to_be_visible()
