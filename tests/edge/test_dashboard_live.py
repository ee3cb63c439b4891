"""The dashboard and the status page against a real Kamailio node (issue 14, items 1 and 5): a
call in progress takes one of the profile's channels on the dashboard's row, a registered PBX
shows as registered, the node is up on the status page and /health/ answers 200 naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.test import Client, override_settings

from apps.edge.models import EdgeNode
from tests.edge.conftest import CarrierUas, Edge
from tests.edge.sip import Dialog, Peer, register, sdp
from tests.edge.test_edge_calls import US_NUMBER, provisioned
from tests.edge.test_live_state import eventually

PBX_IP = "127.0.0.32"


def dashboard_row(client: Client) -> Any:
    response = client.get("/")
    assert response.status_code == 200
    [row] = response.context["board"].profiles
    return row


def test_the_dashboard_counts_a_call_in_progress_and_shows_the_pbx_registered(
    edge: Edge, edge_node: EdgeNode, company: Any, owner: Any, tmp_path: Path
) -> None:
    profile, password = provisioned(company, owner, channels=3)
    client = Client()
    client.force_login(owner)
    idle = dashboard_row(client)
    assert (idle.now.active_calls, idle.now.complete, idle.registration) == (0, True, "not-registered")

    uas = CarrierUas(edge, tmp_path)  # SIPp: answers, then holds the call until the PBX's BYE
    pbx = Peer(ip=PBX_IP, edge=("127.0.0.1", edge.node.sip_port))
    try:
        assert register(pbx, profile.sip_username or "", password, expires=120).status == 200
        dialog = Dialog.call(pbx, US_NUMBER, sdp(PBX_IP, 43200), user=profile.sip_username, password=password)
        assert dialog.final(timeout=10).status == 200

        during: dict[str, Any] = {}

        def read() -> dict[str, Any]:
            during["row"] = dashboard_row(client)
            return {"calls": during["row"].now.active_calls}

        eventually(read, lambda b: b["calls"] == 1)
        row = during["row"]
        assert (row.now.active_calls, row.profile.channels, row.registration) == (1, 3, "registered")
        assert "1 / 3" in client.get("/").content.decode()

        dialog.request("BYE")
        assert dialog.final_to("BYE").status == 200
        assert uas.wait() == 0
        register(pbx, profile.sip_username or "", password, expires=0)
    finally:
        pbx.close()
        uas.stop()
        edge.rpc("ul.rm", "location", profile.sip_username)  # usrloc's memory outlives the test's rows


def test_a_running_node_is_up_on_the_status_page_and_in_health(edge: Edge, edge_node: EdgeNode, owner: Any) -> None:
    client = Client()
    client.force_login(owner)

    status = client.get("/status/").context["status"]
    with override_settings(STRIPE_SECRET_KEY=""):
        health = Client().get("/health/")

    [node] = status.nodes
    assert (node.node, node.up, node.error) == (edge_node.name, True, "")
    assert "kamailio" in node.version.lower()
    assert health.status_code == 200, health.content
    assert health.json()["checks"]["edge"]["nodes"][edge_node.name]["ok"] is True
