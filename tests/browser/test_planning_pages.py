"""In Chromium (issue 14, items 6 and 7): the owner works out a line's calls on the planning
page, corrects a bad entry, ticks the readiness checklist and sees it saved; on "Connect your
PBX" reads the firewall rules and copies the Asterisk configuration (the password a placeholder),
and after a password reset finds the configuration carrying the new one. Each page reads at 1280
and at 375 pixels wide (screenshots in test-results/screenshots/)."""

from __future__ import annotations

import configparser
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from apps.edge.pbx_config import PASSWORD_PLACEHOLDER
from apps.planning.models import ReadinessChecklist
from tests.edge.factories import two_edge_nodes
from tests.factories import CompanyFactory, member
from tests.helpers.browser import WIDTHS, look_at_both_widths, save_screenshot, sign_in
from tests.sip_profiles.factories import digest_profile

EMAIL = "owner@planning.example"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_plans_the_line_and_ticks_the_checklist(live_server: Any, page: Page) -> None:
    base = live_server.url
    company = CompanyFactory(name="Planning Calls Ltd", country="GB", currency="GBP")
    member(company, Role.OWNER, email=EMAIL)
    sign_in(page, base, EMAIL)

    page.get_by_role("link", name="Planning", exact=True).click()
    expect(page.locator("main h1")).to_have_text("Planning your connection")
    look_at_both_widths(page, "planning")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_label("Upload speed (kbit/s)").fill("-3")
    page.get_by_role("button", name="Calculate").click()
    expect(page.locator("#id_upload_kbps_error")).to_contain_text("greater than or equal to 1")
    expect(page.get_by_label("Upload speed (kbit/s)")).to_have_value("-3")

    # ADSL 8 Mb with PPPoE over ATM and G.729 at 20 ms (63.6 kbit/s a call), nothing kept free.
    page.locator("#id_codec").select_option("g729")
    page.locator("#id_link").select_option("adsl_pppoe_llc")
    page.get_by_label("Upload speed (kbit/s)").fill("448")
    page.get_by_label("Download speed (kbit/s)").fill("8192")
    page.get_by_label("Simultaneous calls wanted").fill("10")
    page.get_by_label("Keep free (%)").fill("0")
    page.get_by_role("button", name="Calculate").click()
    expect(page.locator("#upload-channels")).to_have_text("7")
    expect(page.locator("#download-channels")).to_have_text("128")
    expect(page.locator("#line-channels")).to_have_text("7")
    expect(page.locator("#speed-needed")).to_have_text("636.0 kbit/s")
    look_at_both_widths(page, "planning-result")

    page.set_viewport_size({"width": 1280, "height": 900})
    checklist = page.locator("#checklist")
    checklist.get_by_label("The PBX supports SIP trunks").check()
    checklist.get_by_label("Voice has priority on the router (QoS)").check()
    checklist.get_by_role("button", name="Save the checklist").click()
    expect(page.locator(".messages")).to_contain_text("Checklist saved: 2 of 10 done.")
    expect(page.locator("#checklist-progress")).to_have_text("2 of 10 done")
    expect(checklist.get_by_label("The PBX supports SIP trunks")).to_be_checked()
    row = ReadinessChecklist.objects.get(company=company)
    assert row.pbx_supports_sip
    assert row.qos_configured
    assert not row.firewall_open
    look_at_both_widths(page, "planning-checklist")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_owner_copies_the_asterisk_configuration_and_gets_the_password_in_it_after_a_reset(
    live_server: Any, page: Page, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    base = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    two_edge_nodes(secondary_ports=(5060, 5061))
    company = CompanyFactory(name="Connect Calls Ltd", country="GB", currency="GBP")
    owner = member(company, Role.OWNER, email="owner@pbx-config.example")
    profile, _ = digest_profile(company, owner, name="Head office PBX", tls_required=True, srtp_required=True)
    sign_in(page, base, "owner@pbx-config.example")

    page.goto(f"{base}/sip-profiles/{profile.public_id}/connect/")
    expect(page.locator("#firewall-rules")).to_contain_text("8000–8004")
    expect(page.locator("#firewall-edge")).to_contain_text("sip1.example.com (203.0.113.10)")
    expect(page.locator("#pbx-generic")).to_contain_text(str(profile.sip_username))
    config = page.locator("#pbx-config")
    config.get_by_role("button", name="Copy").first.click()
    expect(config.get_by_role("button", name="Copied")).to_be_visible()
    copied = configparser.ConfigParser(interpolation=None, strict=True)
    copied.read_string(page.evaluate("navigator.clipboard.readText()"))
    assert copied["skypemanager-head-office-pbx-auth"]["username"] == profile.sip_username
    assert copied["skypemanager-head-office-pbx-auth"]["password"] == PASSWORD_PLACEHOLDER
    look_at_both_widths(page, "connect-pbx-config")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Reset password").click()
    password = page.locator("#sip-password").input_value()
    expect(page.locator("#pbx-config-password")).to_contain_text("filled in below, this once")
    expect(page.locator("#pbx-asterisk")).to_contain_text(f"password={password}")
    expect(page.locator("#pbx-freeswitch")).to_contain_text(f'value="{password}"')
    # The profile page's own cards are another test's; here, the configuration fits both widths.
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        save_screenshot(page, f"profile-new-password-config-{width}")
        for card in ("#new-password", "#firewall", "#pbx-config"):
            box = page.locator(card).bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= width, (card, width, box)
