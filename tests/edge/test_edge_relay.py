"""The edge is no open relay: an in-dialog request (a to-tag and a Route to the edge) for a call
the edge does not carry is refused and reaches no carrier, whoever sends it."""

from __future__ import annotations

import secrets

import pytest

from apps.edge.models import EdgeNode
from tests.edge.conftest import Edge
from tests.edge.sip import Peer, build

STRANGER_IP = "127.0.0.12"


@pytest.mark.parametrize("method", ["INVITE", "BYE", "MESSAGE"])
def test_a_made_up_in_dialog_request_gets_481_and_never_reaches_the_carrier(
    edge: Edge, edge_node: EdgeNode, carrier: Peer, method: str
) -> None:
    stranger = Peer(ip=STRANGER_IP, edge=("127.0.0.1", edge.node.sip_port))
    try:
        call_id = secrets.token_hex(8)
        target = f"sip:+442071234567@127.0.0.1:{edge.carrier_port}"
        stranger.send(
            build(
                f"{method} {target} SIP/2.0",
                [
                    ("Via", stranger.via()),
                    ("Route", f"<sip:127.0.0.1:{edge.node.sip_port};lr>"),
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:+15551234567@{STRANGER_IP}>;tag={secrets.token_hex(4)}"),
                    ("To", f"<sip:+442071234567@127.0.0.1>;tag={secrets.token_hex(4)}"),
                    ("Call-ID", call_id),
                    ("CSeq", f"2 {method}"),
                    ("Contact", stranger.contact),
                ],
            )
        )

        final = stranger.expect_final(call_id, method)

        assert final.status == 481
        assert carrier.nothing(timeout=0.5) == []
    finally:
        stranger.close()
