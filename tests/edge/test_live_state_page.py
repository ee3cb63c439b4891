"""The profile page's live status card in Chromium, against the real node: the card polls
(htmx, every 5 s), so a PBX that registers while the page is open shows up without a reload,
and the card fits a phone's width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from apps.companies.models import Role
from apps.edge.models import EdgeNode
from tests.browser.test_rating import sign_in
from tests.edge.conftest import Edge
from tests.edge.sip import Peer, register
from tests.edge.test_edge_calls import provisioned
from tests.factories import CompanyFactory, member

EMAIL = "owner@live.example"
USER_AGENT = "Acme PBX 7.2 (browser test)"
PBX_IP = "127.0.0.33"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_profile_page_shows_a_pbx_registering_while_it_is_open_and_fits_a_phone(
    live_server: Any, page: Page, edge: Edge, edge_node: EdgeNode, tmp_path: Path
) -> None:
    page.set_default_timeout(10_000)
    company = CompanyFactory(name="Live Calls Ltd")
    owner = member(company, Role.OWNER, email=EMAIL)
    profile, password = provisioned(company, owner, channels=4)
    base = live_server.url
    sign_in(page, base, EMAIL)
    expect(page).to_have_url(f"{base}/")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/sip-profiles/{profile.public_id}/")
    card = page.locator("#profile-live")
    expect(card.locator("#live-summary")).to_contain_text("Not registered")
    expect(card.locator("#live-calls")).to_have_text("0 of 4 channels in use")
    node = card.locator("[data-node=test-edge]")
    expect(node).to_have_attribute("data-reachable", "true")
    expect(node).to_contain_text("0 calls in progress")

    pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    try:
        assert register(pbx, profile.sip_username or "", password, expires=300, user_agent=USER_AGENT).status == 200
        # No reload: the card's next poll (every 5 s) brings it.
        expect(node.locator(".live-registration")).to_contain_text(USER_AGENT, timeout=12_000)
        expect(card.locator("#live-summary")).to_contain_text("Registered")
        expect(node).to_contain_text(f"sip:peer@{PBX_IP}:{pbx.port}")
        card.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "live-card-1280.png"), full_page=True)

        page.set_viewport_size({"width": 375, "height": 800})
        page.reload()
        expect(node.locator(".live-registration")).to_contain_text(USER_AGENT)
        card.screenshot(path=str(tmp_path / "live-card-375.png"))
        page.screenshot(path=str(tmp_path / "live-page-375.png"), full_page=True)
        # The card's content wraps inside it (long contact URIs included), and the card fits.
        overflow = card.evaluate("card => card.scrollWidth - card.clientWidth")
        assert overflow <= 0, f"the card's content is {overflow} px wider than the card"
        right = card.evaluate("card => card.getBoundingClientRect().right")
        assert right <= 375, f"the card ends at {right} px on a 375 px screen"
    finally:
        register(pbx, profile.sip_username or "", password, expires=0)
        pbx.close()
