"""The node's log lines of a request carry the node's name (several nodes may log to one place)."""

from __future__ import annotations

import time
from typing import Any

from apps.edge.models import EdgeNode
from tests.edge.conftest import Edge
from tests.edge.sip import Dialog, Peer, sdp
from tests.edge.test_edge_calls import provisioned


def test_a_requests_log_lines_start_with_the_nodes_name_its_cseq_and_call_id(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any
) -> None:
    profile, password = provisioned(company, owner)
    assert profile.sip_username
    pbx = Peer(ip="127.0.0.22", edge=("127.0.0.1", edge.node.sip_port))
    try:
        dialog = Dialog.call(pbx, "411", sdp("127.0.0.22", 43000), user=profile.sip_username, password=password)
        assert dialog.final().status == 403
    finally:
        pbx.close()

    # route[BLOCKED] logs the refusal: "{<node> 1 <CSeq> <Call-ID>} <script>: blocked 411 ...".
    prefix = f"{{{edge.node.name} 1 2 INVITE {dialog.call_id}}} "
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in edge.log.read_text().splitlines() if dialog.call_id in line]
        if any("blocked 411" in line for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert edge.node.name == "test-edge"
    assert any(prefix in line and "blocked 411" in line for line in lines), lines
    assert not any("EDGE_NODE" in line for line in lines), lines
