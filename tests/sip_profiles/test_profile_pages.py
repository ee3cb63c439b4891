from __future__ import annotations

import pytest

from apps.bundles.services import bundles_buy
from apps.companies.models import Role
from apps.core.actor import Actor
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.factories import member
from tests.helpers.confirm import post_confirmed
from tests.sip_profiles.factories import digest_profile, held_number, ip_profile

pytestmark = pytest.mark.django_db


def test_creating_a_digest_profile_in_the_page_shows_the_password_once(company, owner) -> None:
    client = client_as(owner)

    _, response = post_confirmed(
        client,
        "/sip-profiles/new/",
        {"name": "Head office", "auth_method": "registration", "channels": "3", "us_minute_bundles": "1",
         "tls_required": "on", "srtp_required": "on"},
    )  # fmt: skip

    profile = SipProfile.objects.get(name="Head office")
    assert response.status_code == 302
    assert response["Location"] == f"/sip-profiles/{profile.public_id}/"
    shown = client.get(response["Location"])
    assert shown["Cache-Control"] == "no-store"
    assert "will not be shown again" in shown.content.decode()
    detail = client.get(f"/sip-profiles/{profile.public_id}/").content.decode()
    assert profile.sip_username in detail
    assert "will not be shown again" not in detail


def test_a_failed_create_shows_errors_inline_and_keeps_what_was_typed(company, owner) -> None:
    response = client_as(owner).post(
        "/sip-profiles/new/",
        {"name": "Branch", "description": "Leeds office", "auth_method": "ip", "channels": "2",
         "us_minute_bundles": "0", "allowed_ips": "192.0.2.10 5060 udp\n192.0.2.9/29 tcp"},
        format="multipart",
    )  # fmt: skip

    assert response.status_code == 400
    html = response.content.decode()
    assert "Line 2: 192.0.2.9/29 has host bits set; did you mean 192.0.2.8/29?" in html
    assert 'value="Leeds office"' in html
    assert "192.0.2.10 5060 udp" in html
    assert not SipProfile.objects.exists()


def test_the_edit_page_changes_addresses_and_refuses_fewer_channels_than_bundles(company, owner) -> None:
    profile = ip_profile(company, owner, address="192.0.2.10")
    client = client_as(owner)

    _, saved = post_confirmed(  # more channels: their prorated price is confirmed first
        client,
        f"/sip-profiles/{profile.public_id}/edit/",
        {"name": profile.name, "channels": "4", "allowed_ips": "192.0.2.20 5080 tcp", "tls_required": "on",
         "status": "active"},
    )  # fmt: skip
    bundles_buy(actor=Actor(user=owner), profile=profile, count=2)
    refused = client.post(
        f"/sip-profiles/{profile.public_id}/edit/",
        {"name": profile.name, "channels": "1", "allowed_ips": "192.0.2.20 5080 tcp", "status": "active"},
        format="multipart",
    )  # fmt: skip

    assert saved.status_code == 302
    profile.refresh_from_db()
    assert [(a.network, a.port, a.transport) for a in profile.allowed_addresses.all()] == [
        ("192.0.2.20/32", 5080, "tcp")
    ]
    assert profile.srtp_required is False
    assert refused.status_code == 400
    assert "Cancel bundles first, then lower the channels." in refused.content.decode()
    assert (profile.channels, profile.us_minute_bundles) == (4, 2)


def test_the_edit_page_has_no_bundles_field_the_profile_page_has_the_bundles_form(company, owner) -> None:
    profile = ip_profile(company, owner, address="192.0.2.10")
    client = client_as(owner)

    edit = client.get(f"/sip-profiles/{profile.public_id}/edit/").content.decode()
    detail = client.get(f"/sip-profiles/{profile.public_id}/").content.decode()

    assert 'name="us_minute_bundles"' not in edit
    assert 'id="bundle-form"' in detail


def test_the_caller_id_select_offers_the_companys_numbers(company, owner) -> None:
    held_number(company, "+442079460001")

    html = client_as(owner).get("/sip-profiles/new/").content.decode()

    assert "+442079460001" in html
    assert "Unknown number" in html


def test_the_list_searches_and_filters(company, owner) -> None:
    digest_profile(company, owner, name="Head office")
    ip_profile(company, owner, name="Leeds branch")
    client = client_as(owner)

    searched = client.get("/sip-profiles/", {"q": "leeds"}).content.decode()
    filtered = client.get("/sip-profiles/", {"auth_method": "registration"}, HTTP_HX_REQUEST="true").content.decode()

    assert "Leeds branch" in searched
    assert "Head office" not in searched
    assert "Head office" in filtered
    assert "Leeds branch" not in filtered
    assert "<html" not in filtered


def test_the_connect_page_tells_the_pbx_admin_everything(company, owner, settings) -> None:
    profile, _ = digest_profile(company, owner)

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    for expected in (
        settings.SIP_DOMAIN,
        *settings.EDGE_PUBLIC_HOSTS,
        f"_sip._udp.{settings.SIP_DOMAIN}",
        f"_sips._tcp.{settings.SIP_DOMAIN}",
        "TLS 5061",
        # Media: rtpengine's range on the edge, and the PBX's own RTP ports (8000 + 2 × 2 channels),
        # each whole with a Copy button.
        'Media on the edge: UDP <span class="copy-value"><code id="copy-edge-rtp">30000–40000</code>',
        'your PBX\'s RTP ports UDP <span class="copy-value"><code id="copy-rtp">8000–8004</code>',
        profile.sip_username,
        "G.711",
        "G.729",
        "RFC 4733",
        "E.164",
        "T.38",
        "Emergency",
    ):
        assert expected in html, expected
    assert "password" in html.lower()


def test_a_viewer_sees_profiles_but_no_forms(company, owner) -> None:
    profile, _ = digest_profile(company, owner)
    client = client_as(member(company, Role.VIEWER))

    assert client.get("/sip-profiles/").status_code == 200
    detail = client.get(f"/sip-profiles/{profile.public_id}/").content.decode()
    assert "Reset password" not in detail
    assert client.get("/sip-profiles/new/").status_code == 403
    assert client.post(f"/sip-profiles/{profile.public_id}/delete/", format="multipart").status_code == 403
