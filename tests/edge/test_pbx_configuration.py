"""Ready-to-paste PBX configuration (issue 14, item 7) and the firewall rules (item 6) on the
"Connect your PBX" page: the Asterisk PJSIP text is read back with configparser and the
FreeSWITCH gateways with xml.etree, and their values are the profile's and the nodes' own. The
password is in them only in the response that set it (creation, reset); else a placeholder."""

from __future__ import annotations

import configparser
import html as html_lib
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from apps.edge.pbx_config import PASSWORD_PLACEHOLDER
from apps.sip_profiles.models import SipProfile
from tests.conftest import client_as
from tests.edge.factories import two_edge_nodes
from tests.helpers.confirm import post_confirmed
from tests.sip_profiles.factories import digest_profile, ip_profile

pytestmark = pytest.mark.django_db


def block(html: str, element_id: str) -> str:
    match = re.search(rf'<pre class="zone" id="{element_id}"[^>]*>(.*?)</pre>', html, re.S)
    assert match, f"no {element_id} in the page"
    return html_lib.unescape(match.group(1))


def pjsip(html: str) -> configparser.ConfigParser:
    # strict: a section or an option given twice is an error, as Asterisk's own objects would be.
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(block(html, "pbx-asterisk"))
    return parser


def gateways(html: str) -> list[dict[str, Any]]:
    root = ET.fromstring(block(html, "pbx-freeswitch"))  # noqa: S314 - our own page's XML
    assert root.tag == "include"
    return [
        {
            "name": gateway.get("name"),
            **{p.get("name"): p.get("value") for p in gateway.findall("param")},
            "variables": {v.get("name"): v.get("value") for v in gateway.findall("variables/variable")},
        }
        for gateway in root.findall("gateway")
    ]


def generic(html: str) -> dict[str, str]:
    dl = re.search(r'<dl class="facts pbx-facts" id="pbx-generic"[^>]*>(.*?)</dl>', html, re.S)
    assert dl
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", dl.group(1), re.S)
    return {html_lib.unescape(k): html_lib.unescape(v) for k, v in pairs}


def unescaped(value: str) -> str:
    return value.replace("\\;", ";")


def test_the_connect_page_configures_asterisk_and_freeswitch_with_the_profiles_values(
    company: Any, owner: Any, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    two_edge_nodes()
    profile, password = digest_profile(company, owner, name="Head office", tls_required=True, srtp_required=True)
    username = profile.sip_username
    assert username

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    assert password not in html  # the password was shown once, at creation
    conf = pjsip(html)
    trunk = "skypemanager-head-office"
    assert conf[f"{trunk}-tls"]["protocol"] == "tls"
    assert conf[f"{trunk}-auth"]["username"] == username
    assert conf[f"{trunk}-auth"]["password"] == PASSWORD_PLACEHOLDER
    assert conf[f"{trunk}-auth"]["realm"] == "sip.example.com"
    assert [unescaped(c) for c in conf[f"{trunk}-aor"]["contact"].split(",")] == [
        "sip:sip1.example.com:5061;transport=tls",
        "sip:sip2.example.com:5081;transport=tls",
    ]
    endpoint = conf[trunk]
    assert endpoint["type"] == "endpoint"
    assert endpoint["allow"] == "ulaw,alaw,g729"
    assert endpoint["dtmf_mode"] == "rfc4733"
    assert endpoint["media_encryption"] == "sdes"
    assert endpoint["from_user"] == username
    assert endpoint["from_domain"] == "sip.example.com"
    assert endpoint["device_state_busy_at"] == str(profile.channels)
    assert conf[f"{trunk}-identify"]["match"] == "203.0.113.10,198.51.100.10"
    registrations = [conf[name] for name in conf.sections() if conf[name].get("type") == "registration"]
    assert [unescaped(r["outbound_proxy"]) for r in registrations] == [
        "sip:sip1.example.com:5061;transport=tls;lr",
        "sip:sip2.example.com:5081;transport=tls;lr",
    ]
    for registration in registrations:
        assert registration["client_uri"] == f"sip:{username}@sip.example.com"
        assert registration["server_uri"] == "sip:sip.example.com"
        assert registration["expiration"] == "600"

    primary, secondary = gateways(html)
    assert (primary["name"], secondary["name"]) == (f"{trunk}-1", f"{trunk}-2")
    assert primary["proxy"] == "sip1.example.com:5061;transport=tls"
    assert secondary["proxy"] == "sip2.example.com:5081;transport=tls"
    for gateway in (primary, secondary):
        assert gateway["username"] == username
        assert gateway["password"] == PASSWORD_PLACEHOLDER
        assert gateway["from-domain"] == "sip.example.com"
        assert gateway["register"] == "true"
        assert gateway["register-transport"] == "tls"
        assert gateway["variables"] == {
            "absolute_codec_string": "PCMU,PCMA,G729",
            "rtp_secure_media": "mandatory:AES_CM_128_HMAC_SHA1_80",
        }

    table = generic(html)
    assert table["SIP domain (registrar)"] == "sip.example.com"
    assert table["Outbound proxy (primary)"] == "sip1.example.com:5061 (TLS)"
    assert table["Backup proxy (secondary)"] == "sip2.example.com:5081 (TLS)"
    assert table["Username (and authentication user)"] == username
    assert table["RTP ports on your PBX"] == "UDP 8000–8004"
    assert table["DNS SRV"] == "_sip._udp.sip.example.com, _sip._tcp.sip.example.com, _sips._tcp.sip.example.com"
    # The SRV names are in the pasted configurations too, as comments.
    assert "_sips._tcp.sip.example.com" in block(html, "pbx-asterisk")
    assert "_sips._tcp.sip.example.com" in block(html, "pbx-freeswitch")


def rules(html: str) -> list[list[str]]:
    body = re.search(r'<table id="firewall-rules"[^>]*>.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body
    return [
        [re.sub(r"<[^>]+>", " ", cell).split("  ")[0].strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def test_the_firewall_rules_name_the_nodes_addresses_and_both_rtp_ranges(
    company: Any, owner: Any, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    settings.EDGE_RTP_PORT_MIN, settings.EDGE_RTP_PORT_MAX = 30000, 40000
    two_edge_nodes()
    profile, _ = digest_profile(company, owner, tls_required=True)
    SipProfile.objects.filter(pk=profile.pk).update(channels=10)

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    edge = re.search(r'<dd id="firewall-edge">(.*?)</dd>', html, re.S)
    assert edge
    assert re.findall(r'<div class="mono">([^<]+)</div>', edge.group(1)) == [
        "sip1.example.com (203.0.113.10)",
        "sip2.example.com (198.51.100.10)",
    ]
    assert rules(html) == [
        ["Out, to the edge", "UDP and TCP", "any", "5060, 5080", "SIP signalling"],
        ["Out, to the edge", "TCP", "any", "5061, 5081", "SIP over TLS"],
        ["In, from the edge", "UDP and TCP", "your SIP port", "5060, 5080, 5061, 5081", "Inbound calls"],
        ["In, from the edge", "UDP", "8000–8020", "30000–40000", "Media (RTP and RTCP) from the edge"],
        ["Out, to the edge", "UDP", "8000–8020", "30000–40000", "Media (RTP and RTCP) to the edge"],
    ]
    assert "not used while the profile requires TLS" in html
    # The servers card says the same of media: the edge's range and the PBX's own.
    # (Each value is a copyable <code> with its button: compared as the text a reader sees.)
    text = " ".join(re.sub(r"<button[^>]*>Copy</button>|<[^>]+>", "", html).split())
    assert "Media on the edge: UDP 30000–40000, to and from your PBX's RTP ports UDP 8000–8020" in text


def test_the_configuration_carries_the_password_right_after_creation(company: Any, owner: Any, settings: Any) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    two_edge_nodes()

    client = client_as(owner)
    _, created = post_confirmed(
        client,
        "/sip-profiles/new/",
        {"name": "Head office", "auth_method": "registration", "channels": "2", "us_minute_bundles": "0",
         "tls_required": "on", "srtp_required": "on"},
    )  # fmt: skip

    assert created.status_code == 302
    response = client.get(created["Location"])  # the page the password is brought to, once
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    password = re.search(r'id="sip-password" readonly value="([A-Za-z0-9]+)"', html)
    assert password
    assert pjsip(html)["skypemanager-head-office-auth"]["password"] == password.group(1)
    assert {g["password"] for g in gateways(html)} == {password.group(1)}
    assert generic(html)["Password"] == password.group(1)
    assert PASSWORD_PLACEHOLDER not in block(html, "pbx-asterisk")

    # Shown once: the profile page afterwards has no configuration, the connect page the placeholder.
    profile = SipProfile.objects.get(name="Head office")
    assert 'id="pbx-asterisk"' not in client_as(owner).get(f"/sip-profiles/{profile.public_id}/").content.decode()
    later = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()
    assert password.group(1) not in later
    assert pjsip(later)["skypemanager-head-office-auth"]["password"] == PASSWORD_PLACEHOLDER


def test_the_configuration_carries_the_new_password_right_after_a_reset(
    company: Any, owner: Any, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    two_edge_nodes()
    profile, old_password = digest_profile(company, owner, name="Head office")

    client = client_as(owner)
    reset = client.post(f"/sip-profiles/{profile.public_id}/reset-password/", format="multipart")

    assert reset.status_code == 302
    response = client.get(reset["Location"])
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    new_password = re.search(r'id="sip-password" readonly value="([A-Za-z0-9]+)"', html)
    assert new_password
    assert new_password.group(1) != old_password
    assert pjsip(html)["skypemanager-head-office-auth"]["password"] == new_password.group(1)
    assert {g["password"] for g in gateways(html)} == {new_password.group(1)}
    assert old_password not in html
    # A reload brings neither the password nor the configuration again.
    again = client.get(reset["Location"]).content.decode()
    assert new_password.group(1) not in again
    assert 'id="pbx-asterisk"' not in again


def test_an_ip_profile_without_tls_gets_a_trunk_by_address_over_udp(company: Any, owner: Any, settings: Any) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    settings.ALLOW_PRIVATE_SIP_ADDRESSES = True
    two_edge_nodes()
    profile = ip_profile(
        company, owner, address="198.51.100.77", name="Branch", tls_required=False, srtp_required=False
    )

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    conf = pjsip(html)
    trunk = "skypemanager-branch"
    assert f"{trunk}-auth" not in conf
    assert not [s for s in conf.sections() if conf[s].get("type") == "registration"]
    assert conf[f"{trunk}-udp"]["protocol"] == "udp"
    assert conf[f"{trunk}-aor"]["contact"] == "sip:sip1.example.com:5060,sip:sip2.example.com:5080"
    assert conf[trunk]["media_encryption"] == "no"
    assert "outbound_auth" not in conf[trunk]
    assert conf[f"{trunk}-identify"]["match"] == "203.0.113.10,198.51.100.10"
    primary, secondary = gateways(html)
    assert (primary["register"], primary["proxy"], secondary["proxy"]) == (
        "false",
        "sip1.example.com:5060",
        "sip2.example.com:5080",
    )
    assert "password" not in primary
    assert "rtp_secure_media" not in primary["variables"]
    assert generic(html)["Authentication"] == "by source address: 198.51.100.77/32 UDP:5060"
    assert rules(html)[2][:3] == ["In, from the edge", "UDP", "5060"]


def test_another_companys_profile_has_no_configuration_for_this_company(
    company: Any, owner: Any, other_company: Any
) -> None:
    from tests.factories import member

    theirs, _ = digest_profile(other_company, member(other_company))
    assert client_as(owner).get(f"/sip-profiles/{theirs.public_id}/connect/").status_code == 404
