"""An IP profile is identified by where its calls come from: a host or a network, and the
port it sends from over UDP, or the transport it connects over (TCP, TLS: from any port).
Anything else is challenged (407) and reaches no carrier."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from apps.edge.models import EdgeNode
from tests.edge.conftest import CarrierUas, Edge, explain, free_port, received, run_sipp, scenario, sipp_command
from tests.edge.sip import Dialog, Peer, sdp
from tests.edge.test_edge_calls import US_NUMBER, synced
from tests.factories import move_profile_balance
from tests.sip_profiles.factories import ip_profile


def from_address(command: list[str], source: str) -> list[str]:
    command[command.index("-i") + 1] = source
    return command


def test_a_network_profile_calls_from_any_address_in_it_and_only_from_its_port(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    pbx_port = free_port()
    profile = ip_profile(
        company, owner, "127.0.5.0/24", "Office network", port=pbx_port, tls_required=False, srtp_required=False
    )
    move_profile_balance(profile, "10")
    synced(profile)

    uas = CarrierUas(edge, tmp_path)
    command = from_address(
        sipp_command(edge, scenario(tmp_path, "invite_uac.xml"), service=US_NUMBER, port=pbx_port), "127.0.5.9"
    )
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    assert uas.wait() == 0

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as carrier:
        carrier.bind(("127.0.0.1", edge.carrier_port))
        carrier.setblocking(False)
        for source, port in (("127.0.5.9", free_port()), ("127.0.6.9", pbx_port)):
            command = from_address(
                sipp_command(edge, scenario(tmp_path, "plain_uac.xml", expect=407), service=US_NUMBER, port=port),
                source,
            )
            result = run_sipp(command, edge=edge)
            assert result.returncode == 0, f"{source}:{port} " + explain(command, result, edge)
        assert received(carrier) == []


def test_a_tcp_profile_calls_over_tcp_from_any_port_and_over_udp_it_is_challenged(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    """A TCP client connects from a port of the system's choosing: only the address and the
    transport identify it."""
    source = "127.0.7.3"
    profile = ip_profile(
        company,
        owner,
        source,
        "Office over TCP",
        port=5060,
        transport="tcp",
        channels=2,
        tls_required=False,
        srtp_required=False,
    )
    move_profile_balance(profile, "10")
    synced(profile)
    edge_at = ("127.0.0.1", edge.node.sip_port)
    carrier = Peer.bound(ip="127.0.0.1", port=edge.carrier_port, edge=edge_at)
    over_tcp, over_udp = Peer(ip=source, edge=edge_at, transport="tcp"), Peer(ip=source, edge=edge_at)
    try:
        Dialog.call(over_tcp, US_NUMBER, sdp(source, 42000))
        invite = carrier.expect_request("INVITE")
        assert invite.uri.startswith(f"sip:{US_NUMBER}@")
        carrier.respond(invite, 486, "Busy Here", to_tag="busy")
        carrier.expect_request("ACK")

        challenged = Dialog.call(over_udp, US_NUMBER, sdp(source, 42002))
        assert over_udp.expect_final(challenged.call_id, "INVITE").status == 407
        assert carrier.nothing(timeout=0.5) == []
    finally:
        for peer in (carrier, over_tcp, over_udp):
            peer.close()
