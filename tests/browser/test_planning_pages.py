"""In Chromium (issue 14, items 6 and 7): the owner works out a line's calls on the planning
page, corrects a bad entry, ticks the readiness checklist and sees it saved; each page reads at
1280 and at 375 pixels wide (screenshots in test-results/screenshots/)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from apps.planning.models import ReadinessChecklist
from tests.factories import CompanyFactory, member
from tests.helpers.browser import look_at_both_widths, sign_in

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
