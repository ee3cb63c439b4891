"""NAT on the edge: a PBX whose Contact is a private address (192.168.1.10, as behind a home
router) while its packets come from 127.0.0.1:<port> is reached at the address it sent from,
and kept registered only briefly so its NAT binding stays open."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from apps.edge.models import EdgeNode
from tests.edge.conftest import CarrierUas, Edge, explain, free_port, run_sipp, scenario, sipp_command
from tests.edge.test_edge_calls import US_NUMBER, provisioned

NAT_EXPIRES = 60  # EDGE_NAT_EXPIRES in kamailio.cfg


def contacts(edge: Edge, user: str) -> list[dict[str, Any]]:
    """The user's contacts as `ul.dump` lists them."""
    found = []
    for domain in edge.rpc("ul.dump")["Domains"]:
        for record in domain["Domain"]["AoRs"]:
            if record["Info"]["AoR"] == user:
                found += [c["Contact"] for c in record["Info"]["Contacts"]]
    return found


def registered_behind_nat(edge: Edge, tmp_path: Path, profile: Any, password: str) -> int:
    """SIPp registers the profile's user with a private Contact (192.168.1.10) from a loopback
    port, which it returns (the PBX's "public" port, where the edge now sends)."""
    user = str(profile.sip_username)
    port = free_port()
    file = scenario(tmp_path, "register_nat.xml")
    file.write_text(file.read_text().replace("EXPIRES_RE", f"{NAT_EXPIRES}([^0-9]|$)"))
    command = sipp_command(edge, file, service=user, user=user, password=password, port=port)
    result = run_sipp(command, edge=edge)
    assert result.returncode == 0, explain(command, result, edge)
    return port


def test_a_pbx_behind_nat_is_kept_at_the_address_it_registered_from_for_a_short_time(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    port = registered_behind_nat(edge, tmp_path, profile, password)
    try:
        [contact] = contacts(edge, user)
        assert contact["Address"].startswith("sip:" + user + "@192.168.1.10:5060")
        assert contact["Received"] == f"sip:127.0.0.1:{port}"
        assert 0 < contact["Expires"] <= NAT_EXPIRES
    finally:
        edge.rpc("ul.rm", "location", user)


def test_a_pbx_not_behind_nat_keeps_the_expiry_it_asked_for(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    command = sipp_command(
        edge, scenario(tmp_path, "register.xml", expect=200), service=user, user=user, password=password
    )
    try:
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)

        [contact] = contacts(edge, user)
        assert contact["Received"] in ("", "[not set]", None)
        assert NAT_EXPIRES < contact["Expires"] <= 300
    finally:
        edge.rpc("ul.rm", "location", user)


def test_the_carriers_hangup_reaches_a_pbx_behind_nat_at_the_address_it_called_from(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner)
    uas = CarrierUas(edge, tmp_path, name="carrier_uas_bye.xml")
    command = sipp_command(
        edge,
        scenario(tmp_path, "invite_nat_uac.xml"),
        service=US_NUMBER,
        user=profile.sip_username,
        password=password,
    )
    try:
        result = run_sipp(command, edge=edge)
        assert result.returncode == 0, explain(command, result, edge)
        assert uas.wait() == 0, uas.file.with_suffix(".err.log").read_text()
    finally:
        uas.stop()
    assert edge.channels_in_use(profile.pk) == 0


def test_a_pbx_behind_nat_is_pinged_with_options_where_it_registered_from(
    quick_edge: Edge, quick_edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    """On the quick node: a NATed contact gets an OPTIONS keep-alive every second."""
    profile, password = provisioned(company, owner)
    user = str(profile.sip_username)
    port = registered_behind_nat(quick_edge, tmp_path, profile, password)
    try:
        # SIPp has gone; the PBX's socket is this one now.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx:
            pbx.bind(("127.0.0.1", port))
            pbx.settimeout(5)
            for _ in range(2):
                ping, sender = pbx.recvfrom(65535)
                assert ping.startswith(b"OPTIONS sip:" + user.encode() + b"@192.168.1.10:5060"), ping[:200]
                pbx.sendto(ok(ping), sender)
            assert len(contacts(quick_edge, user)) == 1
    finally:
        quick_edge.rpc("ul.rm", "location", user)


def ok(request: bytes) -> bytes:
    """A 200 OK to `request` (its Via, From, To, Call-ID and CSeq)."""
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [h for h in head if h.split(b":", 1)[0].strip().lower() in (b"via", b"from", b"to", b"call-id", b"cseq")]
    return b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""])
