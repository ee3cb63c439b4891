"""The "Connect your PBX" page shows the DNS SRV records of the SIP domain from the edge
nodes (issue 11, item 2): both nodes' public host names, the primary first, their ports."""

from __future__ import annotations

import re
from typing import Any

from apps.edge.models import EdgeNode
from tests.conftest import client_as
from tests.edge.factories import two_edge_nodes
from tests.sip_profiles.factories import digest_profile


def two_nodes() -> None:
    # The secondary's name sorts first: the order must come from the role.
    two_edge_nodes(primary="z-edge", secondary="a-edge")
    EdgeNode.objects.create(
        name="retired", role="secondary", sip_host="192.0.2.10", rpc_url="http://10.0.2.10:5071/RPC",
        database_url="postgres://k@10.0.2.10/edge3", public_host="old.example.com", enabled=False,
    )  # fmt: skip


def zone_lines(html: str) -> list[list[str]]:
    zone = re.search(r'<pre class="zone" id="srv-zone"[^>]*>(.*?)</pre>', html, re.S)
    assert zone, html
    return [line.split() for line in zone.group(1).splitlines() if line and not line.startswith(";")]


def test_the_page_shows_both_nodes_srv_records_primary_first_with_their_ports(
    company: Any, owner: Any, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    two_nodes()
    profile, _ = digest_profile(company, owner, tls_required=True)

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    assert zone_lines(html) == [
        ["_sip._udp.sip.example.com.", "3600", "IN", "SRV", "10", "10", "5060", "sip1.example.com."],
        ["_sip._udp.sip.example.com.", "3600", "IN", "SRV", "20", "10", "5080", "sip2.example.com."],
        ["_sip._tcp.sip.example.com.", "3600", "IN", "SRV", "10", "10", "5060", "sip1.example.com."],
        ["_sip._tcp.sip.example.com.", "3600", "IN", "SRV", "20", "10", "5080", "sip2.example.com."],
        ["_sips._tcp.sip.example.com.", "3600", "IN", "SRV", "10", "10", "5061", "sip1.example.com."],
        ["_sips._tcp.sip.example.com.", "3600", "IN", "SRV", "20", "10", "5081", "sip2.example.com."],
    ]
    assert "old.example.com" not in html  # a disabled node is not offered
    # What the PBX is configured with: registrar, both servers, the TLS proxy, username, TLS and SRTP.
    for expected in (
        "Registrar / proxy",
        "sip.example.com",
        # Each value whole in its own element, with a Copy button beside it.
        '<code id="copy-server-1">sip1.example.com</code>',
        '<span class="muted">(primary; UDP/TCP 5060, TLS 5061)',
        '<code id="copy-server-2">sip2.example.com</code>',
        '<span class="muted">(secondary; UDP/TCP 5080, TLS 5081)',
        'outbound proxy <span class="copy-value"><code id="copy-proxy">sip1.example.com:5061</code>',
        'backup proxy <span class="copy-value"><code id="copy-backup-1">sip2.example.com:5081</code>',
        'data-copy-target="copy-proxy" aria-label="Copy sip1.example.com:5061">Copy</button>',
        str(profile.sip_username),
        "TLS required",
        "SRTP (SDES",
    ):
        assert expected in html, expected


def test_a_node_without_tls_has_no_sips_record_and_one_without_a_public_name_shows_its_address(
    company: Any, owner: Any, settings: Any
) -> None:
    settings.SIP_DOMAIN = "sip.example.com"
    EdgeNode.objects.create(
        name="edge1", role="primary", sip_host="203.0.113.10", sip_port=5060, rpc_url="http://10.0.0.10:5071/RPC",
        database_url="postgres://k@10.0.0.10/edge1",
    )  # fmt: skip
    profile, _ = digest_profile(company, owner, tls_required=False)

    html = client_as(owner).get(f"/sip-profiles/{profile.public_id}/connect/").content.decode()

    assert [line[0] for line in zone_lines(html)] == ["_sip._udp.sip.example.com.", "_sip._tcp.sip.example.com."]
    assert zone_lines(html)[0][-1] == "203.0.113.10."
    assert '<code id="copy-proxy">203.0.113.10:5060</code>' in html
